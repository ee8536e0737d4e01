"""fmaudit: a Responsible-AI audit and mitigation toolkit for people who build foundation models.

Data flows one way: corpus -> data stages -> training -> model stages -> audits -> reports.
"""

__version__ = "0.1.0"
