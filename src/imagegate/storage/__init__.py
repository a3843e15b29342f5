"""Object storage chosen by URL (``file://``, ``memory://``, ``s3://``) behind the core's ``ObjectStore`` port."""

from imagegate.storage.obstore_store import ObstoreObjectStore, S3Options, open_object_store

__all__ = ["ObstoreObjectStore", "S3Options", "open_object_store"]
