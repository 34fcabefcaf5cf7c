"""The database: opening an engine (MongoDB or the embedded one), what a server can do, and dumping and loading collections in mongodump's format."""
