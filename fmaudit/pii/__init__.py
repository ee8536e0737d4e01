"""PII detection and anonymization for the ``pii`` data stage.

``settings``: the policy fields; ``recognizers``: custom recognizers declared in YAML; ``analyze``: a
batched presidio analyzer that runs only the spaCy components a finding needs; ``chunks``: long texts
cut below spaCy's limit without losing entities at the cuts; ``keys``: the secret key (environment
variable or key file) and the sub-keys derived from it; ``operators``: replace, mask, hash, encrypt,
pseudonymize; ``ledger``: salted hashes of what was found; ``evaluate``: recall and precision against a
demo corpus's ground truth.
"""
