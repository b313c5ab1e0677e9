"""A dashboard page that fails answers with a page a person reads (the status of the JSON
API, the message escaped, a way back); the page's own htmx requests and the JSON API keep
the JSON shape."""

from __future__ import annotations

from tests.conftest import Cluster
from tests.dashboard.conftest import browser_session


def test_another_users_workload_is_a_readable_404_page(cluster: Cluster, make_user) -> None:
    owner, stranger = make_user(), make_user()
    workload_id = owner.create_workload(workload_name="<b>mine<b>")["workload_id"]
    session = browser_session(cluster, stranger.username, stranger.password)

    page = session.get(f"{cluster.url}/ui/workloads/{workload_id}", timeout=10)
    assert page.status_code == 404
    assert page.headers["Content-Type"].startswith("text/html")
    assert 'id="error-message"' in page.text and 'href="/"' in page.text
    assert "mine" not in page.text  # nothing of the owner's, escaped or not
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")

    fragment = session.get(
        f"{cluster.url}/ui/workloads/{workload_id}", headers={"HX-Request": "true"}, timeout=10
    )
    assert fragment.status_code == 404
    assert fragment.json()["error"] == "not_found"
    api = stranger.get(f"/workloads/{workload_id}")
    assert (api.status_code, api.json()["error"]) == (404, "not_found")


def test_a_person_who_is_no_admin_gets_a_403_page_for_the_users_page(
    cluster: Cluster, make_user
) -> None:
    person = make_user()
    session = browser_session(cluster, person.username, person.password)
    page = session.get(f"{cluster.url}/ui/users", timeout=10)
    assert page.status_code == 403
    assert page.headers["Content-Type"].startswith("text/html")
    assert person.username in page.text  # still logged in: the header shows who
