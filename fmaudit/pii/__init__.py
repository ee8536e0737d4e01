"""PII detection and anonymization for the ``pii`` data stage (:mod:`fmaudit.stages.pii`).

``settings``: the policy fields; ``recognizers``: custom recognizers declared in YAML (and presidio's phone
recognizer narrowed to digit runs); ``analyze``: batched presidio analysis that runs only the spaCy work a
finding can use, with ``ner_focus`` (NER around possible names) and ``lemmas`` (lemmas for the few tokens
the context enhancer reads); ``chunks``: long texts cut below spaCy's limit without losing entities at the
cuts; ``spans``: overlaps resolved, titles kept with names; ``keys``: the secret key (environment variable
or key file) and its derived sub-keys; ``operators``: replace, mask, hash, encrypt, pseudonymize;
``ledger``: keyed hashes of what was found; ``evaluate`` and ``report``: counts, density, and recall and
precision against a demo corpus's ground truth.
"""
