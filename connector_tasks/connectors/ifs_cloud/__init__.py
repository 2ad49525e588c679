"""IFS Cloud as a ledger target: GL vouchers over IFS's OData v4 projections.

* :mod:`.client` — :class:`~.client.IfsClient`, the OData client of one IFS system (IAM
  client-credentials tokens, keys, enum literals, ETags, IFS error bodies, short retries);
* :mod:`.vouchers` — the two voucher creation routes (External Vouchers load, the default, and
  the Voucher Entry assistant) behind one interface, with the master-data checks made before
  any write and the key reference that makes a post exactly-once;
* :mod:`.mapping` — ledger name → IFS account (+ code parts), cost centre → code part B;
* :mod:`.adapter` — :class:`~.adapter.IfsLedgerTarget`, the LedgerTarget port on one company,
  and :func:`~.adapter.split_by_company`.

Sources are cited where each rule is implemented (docs.ifs.com pages and the public IFS Cloud
21R1 ACCRUL model files in the repository prashweenet/demoproj2, ``accrul/model/accrul/``);
what no public source confirms is marked ASSUMPTION.
"""
