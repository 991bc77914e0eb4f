"""The camera contract between the API, which stores cameras, and ingest, which reads them.

``sources.py``: the source grammar (what a camera may be read from, its kind, a push camera's
token hash, passwords shown as ``***``). ``fields.py``: the ranges of the other fields (fps,
resolution, JPEG quality) and the mask polygons. The API validates a camera with them before it
stores it; ingest parses the same camera with them before it opens it.
"""
