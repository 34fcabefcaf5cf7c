"""Making backups: snapshot a folder into the pool, dump the records, publish the backup; and which backups a retention policy keeps."""
