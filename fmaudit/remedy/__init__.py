"""From finding to fix: trace a failed audit check to the training documents behind it (:mod:`.trace`), join
them with what the data stages recorded (:mod:`.records`), propose and apply a remediation as a policy change
(:mod:`.remediate`), then retrain, re-audit and compare with paired statistics (:mod:`.rerun`)."""
