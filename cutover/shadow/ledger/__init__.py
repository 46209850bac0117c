"""The shadow ledger: a double-entry twin of the legacy books and of the candidate's books.

``posting_rules`` is the accounting policy (pure), ``chain`` the audit hash chain (pure),
``apply`` the resumable bulk writer behind a ``uow`` unit of work, ``verify``, ``reconcile``
and ``compare`` the read side. The CLI lives in ``cutover.cli.shadow``.
"""
