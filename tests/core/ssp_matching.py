"""Reference for the diff's tests: exact minimum-cost maximum bipartite matching on any graph (successive
shortest paths with potentials). It was the diff's matcher before the line sweep; the tests keep it to check
the diff on instances too large to enumerate."""

from __future__ import annotations

import heapq
from collections.abc import Sequence


def min_cost_max_matching(n_left: int, n_right: int, edges: Sequence[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """Maximum-cardinality bipartite matching of least total cost (successive shortest paths with potentials).

    ``edges`` are (left, right, cost ≥ 0). Ties resolve by node index, so the result depends only on the
    input. It starts from a greedy matching of zero-cost edges (orders still exactly on their targets): such a
    matching is the cheapest of its size with all potentials zero, a valid start for successive shortest
    paths, and it leaves only the few drifted orders to augment. Each Dijkstra stops when it reaches the sink.
    """
    adj: list[list[tuple[int, int]]] = [[] for _ in range(n_left)]
    cost: dict[tuple[int, int], int] = {}
    for left, right, c in sorted(edges):
        adj[left].append((right, c))
        cost[left, right] = c
    match_l = [-1] * n_left
    match_r = [-1] * n_right
    for i in range(n_left):
        for j, c in adj[i]:
            if c == 0 and match_r[j] < 0:
                match_l[i], match_r[j] = j, i
                break
    # nodes: 0 = source, 1..n_left = left, n_left+1..n_left+n_right = right, sink = n_left+n_right+1
    sink = n_left + n_right + 1
    pot = [0] * (sink + 1)
    while True:
        dist: dict[int, int] = {0: 0}
        done: dict[int, int] = {}
        prev: dict[int, int] = {}
        heap = [(0, 0)]
        while heap:
            d, u = heapq.heappop(heap)
            if u in done:
                continue
            done[u] = d
            if u == sink:
                break
            if u == 0:
                steps = [(i + 1, 0) for i in range(n_left) if match_l[i] < 0]
            elif u <= n_left:
                i = u - 1
                steps = [(n_left + 1 + j, c) for j, c in adj[i] if match_l[i] != j]
            else:
                j = u - n_left - 1
                steps = [(match_r[j] + 1, -cost[match_r[j], j])] if match_r[j] >= 0 else [(sink, 0)]
            for v, c in steps:
                nd = d + c + pot[u] - pot[v]
                if v not in done and (v not in dist or nd < dist[v]):
                    dist[v] = nd
                    prev[v] = u
                    heapq.heappush(heap, (nd, v))
        if sink not in done:
            break
        # Johnson's update, cut at the sink's distance D: settled nodes get d - D, every other node 0
        # (shifting all potentials by -D changes no reduced cost), so reduced costs stay non-negative.
        reach = done[sink]
        for v, d in done.items():
            pot[v] += d - reach
        v = prev[sink]
        while v != 0:
            u = prev[v]  # v is a right node reached from left node u
            i, j = u - 1, v - n_left - 1
            match_l[i], match_r[j] = j, i
            v = prev[u]  # the right node u was matched to before (or the source)
    return [(i, j) for i, j in enumerate(match_l) if j >= 0]
