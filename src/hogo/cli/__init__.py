"""The ``hogo`` command line (a client of the REST API, plus local ``init``/``serve``/``migrate``)."""
