"""Remote backends. `cairn.backends.ray` holds everything that imports Ray;
this package and its modules outside ray/ never do."""
