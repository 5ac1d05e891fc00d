"""`cairn ui`: a read-only web UI over a datastore (server.py, api.py, and
the single-page app in static/)."""
