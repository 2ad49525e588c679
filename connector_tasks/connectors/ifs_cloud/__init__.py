"""IFS Cloud as a ledger and master target: GL vouchers (and employees as customers or project
resources) over IFS's OData v4 projections.

* :mod:`.client` — :class:`~.client.IfsClient`, the OData client of one IFS system (IAM
  client-credentials tokens, keys, enum literals, ETags, IFS error bodies, short retries);
* :mod:`.vouchers` — the two voucher creation routes (External Vouchers load, the default, and
  the Voucher Entry assistant) behind one interface, with the master-data checks made before
  any write and the key reference that makes a post exactly-once;
* :mod:`.mapping` — ledger name → IFS account (+ code parts), cost centre → code part B;
* :mod:`.companies` — which company a share of a payroll belongs to, and the split of a journal
  into one balanced journal per company (pro rata to gross wages);
* :mod:`.adapter` — :class:`~.adapter.IfsLedgerTarget`, the LedgerTarget port on one company,
  :func:`~.adapter.post_per_company` and :func:`~.adapter.split_by_company`;
* :mod:`.employees` — employees as customers or project resources;
* :mod:`.settings`, :mod:`.service`, :mod:`.target`, :mod:`.tasks`, :mod:`.cli` — the connection's
  typed settings, its client and mappings, the flows' side, the ``ifs_cloud`` queue's tasks and
  ``ml-connector ifs_cloud connect|map|ping`` (see README.md).

Sources are cited where each rule is implemented (docs.ifs.com pages and the public IFS Cloud
21R1 ACCRUL model files in the repository prashweenet/demoproj2, ``accrul/model/accrul/``);
what no public source confirms is marked ASSUMPTION.
"""
