"""Labels people teach and correct (issue 16).

- `store.py`: `custom.sqlite3`: corrections per image, taught labels with their examples;
- `training.py`: a nearest-centroid model per label over the visual embeddings, its threshold
  chosen by leave-one-out against negatives;
- `apply.py`: what a document's labels become once corrections and taught labels are applied
  (the pipeline calls it for every document it indexes);
- `manage.py`: teach, forget, tag add/remove, and re-labelling the existing collection.
"""
