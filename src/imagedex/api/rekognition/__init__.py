"""A drop-in Amazon Rekognition endpoint at `/rekognition` (docs/rekognition.md): `routes.py`
the protocol and who may call, `sigv4.py` request signatures, `images.py` the Image parameter,
`operations.py` and `text.py` the Detect operations, `collection_ops.py` the face collection
operations over `collections.py` (their store) and `face_match.py` (faces, descriptors,
similarity), `errors.py` Rekognition's error answers, `params.py` checks on request members."""

from imagedex.api.rekognition.routes import router

__all__ = ["router"]
