"""People: face embeddings grouped into persons (issue 15), kept server-side in
`people.sqlite3`; only boxes and person ids reach documents and answers."""
