"""The Ray backend (docs/ray.md). The modules that import Ray are sidecar.py
(the run's driver) and slot.py (the actors on the nodes); node_worker.py is
the fork server an actor starts and does not import Ray. Importing this
package imports none of them."""
