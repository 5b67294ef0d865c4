"""The command line: dwfsctl. A client of the public dwfs API."""
