"""A rights holder's large catalog: My catalog and the API list its recordings a page at a
time, in every order, with a fixed number of queries, and My catalog's orders are read
off an index of the holder's shares instead of sorting all of them (PostgreSQL)."""

import json
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client, RequestFactory

from catalog.models import OwnershipShare, Recording, RightsHolder
from catalog.selectors import ownership_shares_of_holders, ownership_shares_search
from catalog.services import ShareSpec, recording_shares_set, recording_update
from catalog.views import MY_CATALOG_SORTING_ONE_HOLDER
from core.roles import RIGHTS_HOLDER
from tests.catalog.factories import RightsHolderFactory, UserFactory

pytestmark = pytest.mark.django_db

SORTS = ["holder", "-holder", "isrc", "-isrc", "title", "-title", "share", "-share"]


def catalog_write(holder: RightsHolder, other: RightsHolder, n: int) -> list[Recording]:
    """``n`` recordings, each shared by ``holder`` and ``other``, inserted out of ISRC
    order (ids do not follow ISRCs), with repeated titles and percents so that the
    tie-breaks matter."""
    numbers = [(7919 * i) % n for i in range(n)]  # a permutation of 0..n-1 (n < 7919)
    recordings = Recording.objects.bulk_create(
        Recording(
            title=f"Tune {k % 7}",
            isrc=f"QZB0126{k:05d}",
            duration_seconds=Decimal("1.000"),
            sample_rate=8000,
            audio=f"recordings/{k}.wav",
            audio_sha256=f"{k:064x}",
        )
        for k in numbers
    )
    percents = [Decimal("40"), Decimal("25"), Decimal("100")]
    shares = []
    for k, recording in zip(numbers, recordings, strict=True):
        mine = percents[k % 3]
        shares.append(OwnershipShare.of(recording, rights_holder=holder, percent=mine))
        if mine < 100:
            shares.append(OwnershipShare.of(recording, rights_holder=other, percent=100 - mine))
    OwnershipShare.objects.bulk_create(shares)
    return recordings


@pytest.fixture
def label():
    holder = RightsHolderFactory(legal_name="Label", kind=RightsHolder.Kind.LABEL)
    other = RightsHolderFactory(legal_name="Artist")
    user = UserFactory(role=RIGHTS_HOLDER)
    holder.users.add(user)
    client = Client()
    client.force_login(user)
    return holder, other, client


def shown_isrcs(html: str) -> list[str]:
    table = html.split('id="my-recordings"')[1].split("</table>")[0]
    return re.findall(r'<td class="mono">([A-Z0-9]{12})</td>', table)


def expected_order(holder: RightsHolder, sort: str, query: str = "") -> list[str]:
    shares = [s for s in OwnershipShare.objects.filter(rights_holder=holder)]
    if query:
        shares = [
            s
            for s in shares
            if query.lower() in s.recording_title.lower() or s.recording_isrc.startswith(query)
        ]
    keys = {
        "holder": lambda s: (s.recording_isrc, s.pk),
        "isrc": lambda s: (s.recording_isrc, s.pk),
        "title": lambda s: (s.recording_title, s.recording_isrc, s.pk),
        "share": lambda s: (s.percent, s.recording_isrc, s.pk),
    }
    shares.sort(key=keys[sort.lstrip("-")], reverse=sort.startswith("-"))
    return [s.recording_isrc for s in shares]


@pytest.mark.parametrize("sort", SORTS)
def test_every_page_in_every_order_shows_the_holders_recordings_once(label, monkeypatch, sort):
    holder, other, client = label
    catalog_write(holder, other, 40)
    monkeypatch.setattr("catalog.views.PAGE_SIZE", 7)
    shown = []
    for page in range(1, 7):
        html = client.get("/catalog/", {"sort": sort, "page": page}).content.decode()
        assert f"Page {page} of 6 (40 in all)" in html
        shown += shown_isrcs(html)
    assert shown == expected_order(holder, sort)


@pytest.mark.parametrize("query", ["tune 3", "QZB01260001"])
def test_a_search_pages_through_its_matches_in_order(label, monkeypatch, query):
    holder, other, client = label
    catalog_write(holder, other, 40)
    monkeypatch.setattr("catalog.views.PAGE_SIZE", 4)
    expected = expected_order(holder, "-title", query)
    assert 4 < len(expected) <= 12
    shown = []
    for page in range(1, (len(expected) + 3) // 4 + 1):
        response = client.get("/catalog/", {"q": query, "sort": "-title", "page": page})
        shown += shown_isrcs(response.content.decode())
    assert shown == expected


def test_a_renamed_recording_is_found_and_sorted_by_its_new_title(label):
    holder, other, client = label
    recordings = catalog_write(holder, other, 10)
    renamed = recordings[3]
    recording_update(recording=renamed, data={"title": "Aaa first now"}, actor=None)
    html = client.get("/catalog/", {"q": "aaa first"}).content.decode()
    assert shown_isrcs(html) == [renamed.isrc]
    assert shown_isrcs(client.get("/catalog/", {"sort": "title"}).content.decode())[0] == (
        renamed.isrc
    )
    assert set(renamed.ownership_shares.values_list("recording_title", flat=True)) == {
        "Aaa first now"
    }


def test_replaced_shares_carry_the_recordings_isrc_and_title(label):
    holder, other, _client = label
    recording = catalog_write(holder, other, 3)[0]
    recording_shares_set(
        recording=recording,
        shares=[ShareSpec(other, Decimal("100"))],
        actor=None,
    )
    share = recording.ownership_shares.get()
    assert (share.recording_isrc, share.recording_title) == (recording.isrc, recording.title)


def test_my_catalog_takes_the_same_queries_on_every_page(
    label, monkeypatch, django_assert_max_num_queries
):
    holder, other, client = label
    catalog_write(holder, other, 60)
    monkeypatch.setattr("catalog.views.PAGE_SIZE", 25)
    for query in [
        {},
        {"page": 2},
        {"page": 3, "sort": "-share"},
        {"sort": "title", "q": "tune"},
    ]:
        with django_assert_max_num_queries(15):
            assert client.get("/catalog/", query).status_code == 200


def test_the_api_list_takes_the_same_queries_on_every_page(label, django_assert_max_num_queries):
    holder, other, client = label
    catalog_write(holder, other, 120)
    for query in [{}, {"ordering": "-title"}]:
        with django_assert_max_num_queries(8):
            body = client.get("/catalog/api/recordings/", query).json()
        assert len(body["results"]) == 50
        assert {holder.pk} <= {
            share["rights_holder"]
            for recording in body["results"]
            for share in recording["ownership_shares"]
        }


def plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's query plans")
def test_every_order_of_a_holders_shares_is_read_off_an_index_not_sorted(label):
    """The query that picks a page's ids, first page and last, in every order, has a plan
    without a Sort node that walks one of the holder's share indexes. Sorting is priced
    out (``enable_sort = off``): on a table this small the planner may rightly prefer to
    sort, but a plan without a Sort then exists only if an index yields the order."""
    holder, other, _client = label
    catalog_write(holder, other, 300)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE catalog_ownershipshare")
        cursor.execute("SET LOCAL enable_sort = off")
    for sort in SORTS:
        request = RequestFactory().get("/catalog/", {"sort": sort})
        shares, _ = MY_CATALOG_SORTING_ONE_HOLDER.apply(
            ownership_shares_search(ownership_shares_of_holders([holder.pk]), ""), request
        )
        ids = shares.values_list("pk", flat=True)
        for page in (ids[:50], ids[250:300], ids.reverse()[:50]):
            plan = json.loads(page.explain(format="json"))[0]["Plan"]
            nodes = list(plan_nodes(plan))
            assert not [n for n in nodes if "Sort" in n["Node Type"]], (sort, plan)
            assert {n.get("Index Name") for n in nodes} & {
                "share_holder_isrc",
                "share_holder_title",
                "share_holder_percent",
            }, (sort, plan)
