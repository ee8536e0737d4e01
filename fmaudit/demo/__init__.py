"""The synthetic demo corpus and the demo run (``fmaudit demo-corpus``, ``fmaudit demo``)."""
