"""Money-flow analysis: ``transfers_to`` chains up to three hops out of and into an account.

Hop by hop in Python, one bounded request per hop and direction (at most
``transfers_per_account`` edges per account), each account asked once. Chains are simple
paths (no account twice), except a path that comes back to the investigated account:
that is a cycle, money going round to hide where it came from.

Output (ids without the ``account:`` prefix): ``fan_out`` / ``fan_in`` (distinct direct
recipients / senders), ``amount_out`` / ``amount_in`` (moved directly), ``pass_through``
(share of what came in that went out again, a mule's signature), ``chains_out`` /
``chains_in`` (maximal chains, each ``{accounts, amounts}``, in the money's direction),
``cycles``, ``accounts_downstream`` / ``accounts_upstream``, ``flagged_accounts`` (those
of them already flagged: money that comes from or goes to flagged accounts) and
``truncated``.
"""

from __future__ import annotations

from typing import Any

from ..graph import schema
from ..graph.access import GraphAccess, GraphPort
from ..graph.connection import is_timeout
from .model import Investigation, MoneyFlowLimits, plain_id


class _Walk:
    def __init__(self, access: GraphAccess, limits: MoneyFlowLimits, direction: str) -> None:
        self.access = access
        self.limits = limits
        self.direction = direction
        self.transfers: dict[str, list[dict[str, Any]]] = {}
        self.truncation: dict[str, str] = {}

    def load(self, accounts: set[str]) -> None:
        wanted = sorted(a for a in accounts if a not in self.transfers)
        if not wanted:
            return
        per_account = self.limits.transfers_per_account
        rows = self.access.run(
            lambda g: g.transfers(wanted, self.direction, per_account + 1),
            f"money flow: transfers {self.direction}",
        )
        for account in wanted:
            self.transfers[account] = []
        for row in rows:
            edges = sorted(row["transfers"], key=lambda t: str(t["account"]))
            if len(edges) > per_account:
                self.truncation["fan_out"] = f"at most {per_account} transfers were followed per account"
                edges = edges[:per_account]
            self.transfers[str(row["account"])] = edges

    def walk(
        self, start: str
    ) -> tuple[list[tuple[list[str], list[float]]], list[tuple[list[str], list[float]]]]:
        """(maximal chains, cycles back to start), each as (accounts, amounts)."""
        open_paths: list[tuple[list[str], list[float]]] = [([start], [])]
        chains: list[tuple[list[str], list[float]]] = []
        cycles: list[tuple[list[str], list[float]]] = []
        for _ in range(self.limits.max_hops):
            self.load({path[-1] for path, _ in open_paths})
            extended: list[tuple[list[str], list[float]]] = []
            for path, amounts in open_paths:
                grew = False
                for edge in self.transfers.get(path[-1], []):
                    other, amount = str(edge["account"]), round(float(edge["amount"]), 2)
                    if other == start and len(path) > 1:
                        cycles.append(([*path, start], [*amounts, amount]))
                    elif other not in path:
                        extended.append(([*path, other], [*amounts, amount]))
                        grew = True
                if not grew and len(path) > 1:
                    chains.append((path, amounts))
            open_paths = extended
            if len(open_paths) + len(chains) > self.limits.max_chains:
                self.truncation["max_chains"] = f"at most {self.limits.max_chains} chains were followed"
                open_paths = open_paths[: max(self.limits.max_chains - len(chains), 0)]
            if not open_paths:
                break
        chains.extend(open_paths)
        return chains, cycles


def _chain_dicts(chains: list[tuple[list[str], list[float]]], reverse: bool) -> list[dict[str, Any]]:
    out = []
    for accounts, amounts in chains:
        ids = [plain_id(a) for a in accounts]
        if reverse:  # in money's direction: the first sender first
            ids, amounts = ids[::-1], amounts[::-1]
        out.append({"accounts": ids, "amounts": amounts, "hops": len(amounts)})
    return sorted(out, key=lambda c: (c["accounts"], c["amounts"]))


def analyse_money_flow(
    graph: GraphPort | GraphAccess, investigation: Investigation, limits: MoneyFlowLimits | None = None
) -> dict[str, Any]:
    """Where the investigated account's money comes from and goes (see the module docstring)."""
    limits = limits or MoneyFlowLimits()
    access = GraphAccess.of(graph)
    start = investigation.vertex_id
    outgoing, incoming = _Walk(access, limits, "out"), _Walk(access, limits, "in")
    chains_out: list[tuple[list[str], list[float]]] = []
    chains_in: list[tuple[list[str], list[float]]] = []
    cycles: list[tuple[list[str], list[float]]] = []
    truncation: dict[str, str] = {}
    if investigation.entity_type == schema.ACCOUNT:
        try:
            chains_out, cycles = outgoing.walk(start)
            chains_in, _ = incoming.walk(start)  # the same cycles, seen backwards
        except Exception as error:
            if not is_timeout(error):
                raise
            truncation["evaluation_timeout"] = f"a graph request exceeded its evaluation timeout: {error}"
    truncation.update(outgoing.truncation)
    truncation.update(incoming.truncation)
    direct_out = outgoing.transfers.get(start, [])
    direct_in = incoming.transfers.get(start, [])
    amount_out = round(sum(float(t["amount"]) for t in direct_out), 2)
    amount_in = round(sum(float(t["amount"]) for t in direct_in), 2)
    downstream = {a for path, _ in chains_out + cycles for a in path} - {start}
    upstream = {a for path, _ in chains_in for a in path} - {start}
    flagged: list[str] = []
    if downstream | upstream:
        rows = access.run(lambda g: g.flag_states(sorted(downstream | upstream)), "money flow: flags")
        flagged = sorted(plain_id(str(r["id"])) for r in rows if r["flagged"] is True)
    return {
        "analysis": "money_flow",
        "start": {"type": investigation.entity_type, "id": investigation.entity_id},
        "fan_out": len({str(t["account"]) for t in direct_out}),
        "fan_in": len({str(t["account"]) for t in direct_in}),
        "amount_out": amount_out,
        "amount_in": amount_in,
        "pass_through": round(min(amount_out / amount_in, 1.0), 3) if amount_in > 0 else 0.0,
        "chains_out": _chain_dicts(chains_out, reverse=False),
        "chains_in": _chain_dicts(chains_in, reverse=True),
        "cycles": _chain_dicts(cycles, reverse=False),
        "longest_chain": max((len(a) for _, a in chains_out + chains_in), default=0),
        "accounts_downstream": sorted(plain_id(a) for a in downstream),
        "accounts_upstream": sorted(plain_id(a) for a in upstream),
        "flagged_accounts": flagged,
        "truncated": bool(truncation),
        "truncation": [{"reason": r, "detail": d} for r, d in sorted(truncation.items())],
        "requests": access.requests,
    }
