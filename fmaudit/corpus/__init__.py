"""Documents, streaming corpus readers, JSONL writers and quarantine records.

A document is ``{"id": str, "text": str, "meta": {...}}``. Readers stream: they hold one record at a
time, whatever the size of the corpus. A record that cannot become a document (bad JSON, missing or
non-string text, invalid UTF-8, empty text, a bad id or meta, meta nested too deep, text over the size
limit, duplicate id, an unreadable stretch of a file) is never fatal: the reader yields a
:class:`Quarantined` record naming the source file, the line (or row) and the error.

- :mod:`.records`: the record types and turning one raw line or object into a document or a quarantine record;
- :mod:`.inputs`: which files an input argument names, and hashing what is read as it is read;
- :mod:`.readers`: the streaming readers (JSONL, Parquet, text) and the cross-file duplicate-id index;
- :mod:`.writers`: atomic JSON and reproducible JSONL writers.
"""

from fmaudit.corpus.inputs import (JOB_MARKER, SIDE_FILES, ReadDigest, check_read_hashes, expand_inputs,
                                   side_file_reason)
from fmaudit.corpus.readers import (IdIndex, iter_json_rows, read_corpus, read_corpus_batches,
                                    read_documents, read_jsonl, read_parquet, read_text_file)
from fmaudit.corpus.records import (DERIVED_TAGS, JSONL_SUFFIXES, MAX_META_DEPTH, PARQUET_SUFFIXES, TEXT_SUFFIXES,
                                    UTF8_BOM, Document, Quarantined, Record, derived_id, dumps, id_hash64,
                                    parse_json_record, record_from_object, sha256_file)
from fmaudit.corpus.writers import ShardedJsonlWriter, write_json_atomic, write_jsonl

__all__ = ["DERIVED_TAGS", "JOB_MARKER", "JSONL_SUFFIXES", "MAX_META_DEPTH", "PARQUET_SUFFIXES", "SIDE_FILES",
           "TEXT_SUFFIXES", "UTF8_BOM", "Document", "IdIndex", "Quarantined", "ReadDigest", "Record",
           "ShardedJsonlWriter", "check_read_hashes", "derived_id", "dumps", "expand_inputs", "id_hash64",
           "iter_json_rows", "parse_json_record", "read_corpus", "read_corpus_batches", "read_documents", "read_jsonl",
           "read_parquet", "read_text_file", "record_from_object", "sha256_file", "side_file_reason", "write_json_atomic",
           "write_jsonl"]
