"""moto S3 server on loopback (fixture: s3_server)."""
