"""An identity provider sending requests in parallel, for one organization and for two: every
push is applied exactly once, one at a time per organization, and nothing is lost."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

from tests.integration.scim.conftest import Scim
from tests.integration.scim.test_scim_users import entra_user, patch


def test_parallel_pushes_for_two_organizations_all_apply(scim: Scim) -> None:
    clients = {name: scim.client(name) for name in ("acme", "beta")}
    jobs = [(name, f"u{i}@{name}.example") for i in range(12) for name in clients]

    def create(job: tuple[str, str]) -> int:
        name, address = job
        return clients[name].post("/Users", json=entra_user(address)).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(create, jobs)) == [201] * len(jobs)
    for name in clients:
        members = scim.cli("members", "--org", name)
        assert sorted(m["email"] for m in members) == sorted(a for n, a in jobs if n == name)
        assert all(m["status"] == "invited" for m in members)


def test_parallel_patches_of_one_user_lose_no_change(scim: Scim) -> None:
    client = scim.client()
    user = client.post("/Users", json=entra_user("ada@acme.example")).json()
    names = [f"Name {i}" for i in range(10)]

    def rename(name: str) -> int:
        body = patch({"op": "Replace", "path": "displayName", "value": name})
        return client.patch(f"/Users/{user['id']}", json=body).status_code

    with ThreadPoolExecutor(max_workers=5) as pool:
        assert list(pool.map(rename, names)) == [200] * len(names)
    updates = [e for e in scim.cli("events", "--org", "acme") if e["action"] == "member.update"]
    # every rename was applied, one after another: each event starts from the one before
    assert len(updates) == len(names)
    chain = [(e["before"]["name"], e["after"]["name"]) for e in updates]
    for (_, after), (before, _) in itertools.pairwise(chain):
        assert before == after
    assert client.get(f"/Users/{user['id']}").json()["displayName"] == chain[-1][1]
