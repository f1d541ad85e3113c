#!/usr/bin/env python3
"""Graph fake conformance: hold the fake to Meta's own Python SDK.

Starts the Graph fake (`graph-fake`) on fixtures/scenarios/conformance.json at the
instant the scenario's user authorised the app, points `facebook-business` 25.0.1 at it
(`FacebookSession.GRAPH`, `api_version='v25.0'`) and checks, one assertion per documented
behaviour, what the SDK sees. Plain urllib is used only for the fake's clock
(`POST /__fake/now`) and for the few calls the SDK cannot make as Graph sees them
(following a `previous`/`next` URL, a proof made for another token).

Prints `ok  <name>  (<doc>)` or `FAIL <name>: <what differed>  (<doc>)` per check and a
total; exits 1 when any check fails. Standard library and the SDK only.

Usage: python3 conformance.py   (the fake: $GRAPH_FAKE, else .build/debug/graph-fake;
the scenario: $GRAPH_CONFORMANCE_SCENARIO, else fixtures/scenarios/conformance.json)
"""

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

# The fake is on loopback: never send its requests (SDK or urllib) through a proxy.
for _name in ("NO_PROXY", "no_proxy"):
    os.environ[_name] = ",".join(filter(None, [os.environ.get(_name), "127.0.0.1", "localhost"]))

from facebook_business import apiconfig  # noqa: E402
from facebook_business.adobjects.lead import Lead  # noqa: E402
from facebook_business.adobjects.leadgenform import LeadgenForm  # noqa: E402
from facebook_business.adobjects.page import Page  # noqa: E402
from facebook_business.adobjects.user import User  # noqa: E402
from facebook_business.api import FacebookAdsApi  # noqa: E402
from facebook_business.exceptions import FacebookRequestError  # noqa: E402
from facebook_business.session import FacebookSession  # noqa: E402

# The SDK warns (TypeChecker) on params it does not declare (`limit`, `filtering`, …) and
# still sends them; the warnings are noise here.
warnings.simplefilter("ignore")

REPO = Path(__file__).resolve().parents[2]
SDK_VERSION = "v25.0.1"
API_VERSION = "v25.0"

# ---------------------------------------------------------------------------------------
# Docs each check follows (cited beside its name).
D_PROOF = "https://developers.facebook.com/docs/graph-api/securing-requests/ ; facebook_business/session.py"
D_PROOF_ERR = "https://developers.facebook.com/docs/graph-api/securing-requests/ ; payload captured in facebook/facebook-python-business-sdk#528"
D_REQUIRE_SECRET = "https://developers.facebook.com/docs/facebook-login/security/#appsecret (Require App Secret)"
D_LONG_LIVED = "https://developers.facebook.com/docs/facebook-login/guides/access-tokens/get-long-lived/"
D_PAGE_TOKEN = "https://developers.facebook.com/docs/facebook-login/guides/access-tokens/get-long-lived/#long-lived-page-token"
D_ACCESS_TOKENS = "https://developers.facebook.com/docs/facebook-login/guides/access-tokens/"
D_DEBUG_TOKEN = "https://developers.facebook.com/docs/graph-api/reference/debug_token/"
D_TOKEN_ERRORS = "https://developers.facebook.com/docs/facebook-login/guides/access-tokens/debugging-and-error-handling/"
D_DATA_ACCESS = "https://developers.facebook.com/docs/facebook-login/auth-vs-data/ ; GRAPH_API.md 'Tokens and the 90 days'"
D_DATA_ACCESS_ERR = "https://developers.facebook.com/docs/facebook-login/auth-vs-data/ ; 190/493 payload captured in MrSwitch/hello.js#548"
D_OVERVIEW = "https://developers.facebook.com/docs/graph-api/overview/#fields"
D_FIELDS = "GRAPH_API.md 'Fewer round trips' ; https://developers.facebook.com/docs/graph-api/overview/#fields"
D_SDK_FORM = "facebook_business/adobjects/leadgenform.py (LeadgenForm.Field)"
D_SDK_LEAD = "facebook_business/adobjects/lead.py (Lead.Field)"
D_RATE = "https://developers.facebook.com/docs/graph-api/overview/rate-limiting/"
D_HAS_LEAD_ACCESS = "https://developers.facebook.com/docs/graph-api/reference/has-lead-access/"
D_RESULTS = "https://developers.facebook.com/docs/graph-api/results/"
D_CURSOR = "https://developers.facebook.com/docs/graph-api/results/ ; facebook_business/api.py (Cursor)"
D_NEXT_TOKEN = "GRAPH_API.md 'Paging' ; https://developers.facebook.com/docs/graph-api/results/"
D_RETRIEVING = "https://developers.facebook.com/docs/marketing-api/guides/lead-ads/retrieving/"
D_FILTERING = "https://developers.facebook.com/docs/marketing-api/guides/lead-ads/retrieving/ ; GRAPH_API.md 'Incremental windows'"
D_LEAD_SHAPE = "https://developers.facebook.com/docs/marketing-api/guides/lead-ads/retrieving/ ; GRAPH_API.md 'Walking to the leads'"
D_FORMS = "GRAPH_API.md 'Walking to the leads' ; https://developers.facebook.com/docs/graph-api/reference/page/leadgen_forms/"
D_ERRORS = "https://developers.facebook.com/docs/graph-api/guides/error-handling/"
D_UNKNOWN_PATH = "https://developers.facebook.com/docs/graph-api/guides/error-handling/ ; GRAPH_API.md 'Errors' (2500 captured in RealmTeam/django-rest-framework-social-oauth2#180)"
D_MISSING = "https://developers.facebook.com/docs/graph-api/guides/error-handling/ ; GRAPH_API.md 'Errors' (100/33)"
D_BATCH = "https://developers.facebook.com/docs/graph-api/batch-requests/ ; facebook_business/api.py (FacebookAdsApiBatch)"
D_PERMISSION = "https://developers.facebook.com/docs/marketing-api/guides/lead-ads/retrieving/ (leads_retrieval) ; https://developers.facebook.com/docs/graph-api/guides/error-handling/ (200)"

# The scenario's roles (fixtures/scenarios/conformance.json).
USER_SHORT = "EAAC-conformance-user-short"          # short-lived, authorises the app at the suite's start
USER_DECLINES = "EAAC-conformance-user-declines"    # declines leads_retrieval later
USER_PASSWORD = "EAAC-conformance-user-password"    # changes their password later
PAGE_TOKEN = "EAAC-conformance-page-1001"           # a Page token for PAGE_A
PAGE_A, PAGE_B = "1001", "1002"
FORM_ACTIVE, FORM_ARCHIVED, FORM_CUSTOM, FORM_ORGANIC = "100101", "100102", "100103", "100201"
MISSING_ID = "987654321098"
CUSTOM_KEYS = {"Quel est votre budget annuel ?", "ご興味のある製品は？"}
AD_FIELDS = ("ad_id", "ad_name", "adset_id", "adset_name", "campaign_id", "campaign_name")
LEAD_READ_FIELDS = ["id", "created_time", "field_data", "ad_id", "ad_name", "adset_id", "adset_name", "campaign_id",
                    "campaign_name", "form_id", "is_organic", "platform", "custom_disclaimer_responses", "partner_name"]
SHORT_LIVED = 3600
LONG_LIVED = 5_184_000
DATA_ACCESS = 90 * 86_400

# ---------------------------------------------------------------------------------------
# Time


def parse_instant(text):
    """`2026-11-10T18:00:00Z` or Graph's `2026-11-01T12:34:56+0000` → aware datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")


def epoch(dt):
    return int(dt.timestamp())


def iso(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def pacific(dt):
    """Graph's 'Wednesday, 14-Feb-18 18:00:00 PST' (US Pacific, DST by the 2007 US rule)."""
    utc = dt.astimezone(timezone.utc)

    def nth_sunday(year, month, n):
        first = datetime(year, month, 1, tzinfo=timezone.utc)
        return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))

    dst_start = nth_sunday(utc.year, 3, 2) + timedelta(hours=10)   # 02:00 PST
    dst_end = nth_sunday(utc.year, 11, 1) + timedelta(hours=9)     # 02:00 PDT
    summer = dst_start <= utc < dst_end
    local = utc + timedelta(hours=-7 if summer else -8)
    return "%s, %02d-%s-%02d %02d:%02d:%02d %s" % (WEEKDAYS[local.weekday()], local.day, MONTHS[local.month - 1],
                                                  local.year % 100, local.hour, local.minute, local.second,
                                                  "PDT" if summer else "PST")


# ---------------------------------------------------------------------------------------
# The runner


class Mismatch(Exception):
    """What a check saw differ from what the doc says."""


class Suite:
    def __init__(self):
        self.results = []  # (name, ok, detail)

    def check(self, name, doc, body):
        try:
            body()
        except Mismatch as error:
            self._fail(name, str(error), doc)
        except FacebookRequestError as error:
            self._fail(name, "unexpected Graph error: " + describe(error), doc)
        except Exception as error:  # a check must never stop the suite
            self._fail(name, "%s: %s" % (type(error).__name__, error), doc)
        else:
            self.results.append((name, True, ""))
            print("ok  %s  (%s)" % (name, doc), flush=True)

    def _fail(self, name, detail, doc):
        self.results.append((name, False, detail))
        print("FAIL %s: %s  (%s)" % (name, detail, doc), flush=True)


def expect(actual, expected, what):
    if actual != expected:
        raise Mismatch("%s: got %s, expected %s" % (what, short(actual), short(expected)))


def expect_true(condition, detail):
    if not condition:
        raise Mismatch(detail)


def short(value, limit=300):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


# Every error envelope seen, for the fbtrace_id check: (where, body).
ERROR_BODIES = []


def describe(error):
    return "HTTP %s code %s/%s %s: %s" % (error.http_status(), error.api_error_code(), error.api_error_subcode(),
                                         error.api_error_type(), error.api_error_message())


def graph_error(where, call):
    """Runs `call`, which must fail with a Graph error; returns the FacebookRequestError."""
    try:
        call()
    except FacebookRequestError as error:
        ERROR_BODIES.append((where, error.body()))
        return error
    raise Mismatch("the call succeeded; expected a Graph error")


def expect_error(error, **expected):
    """Compares FacebookRequestError accessors; a compiled pattern must fullmatch the message."""
    actual = {"http": error.http_status(), "code": error.api_error_code(), "subcode": error.api_error_subcode(),
              "type": error.api_error_type(), "message": error.api_error_message()}
    diffs = []
    for key, want in expected.items():
        got = actual[key]
        same = bool(want.fullmatch(got or "")) if isinstance(want, re.Pattern) else got == want
        if not same:
            diffs.append("%s %s (expected %s)" % (key, short(got), want.pattern if isinstance(want, re.Pattern) else short(want)))
    if diffs:
        raise Mismatch("; ".join(diffs))


# ---------------------------------------------------------------------------------------
# The fake


class Fake:
    def __init__(self, binary, scenario, now):
        self.process = subprocess.Popen([str(binary), str(scenario), "--now", iso(now), "--exit-on-stdin-eof"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        timer = threading.Timer(30, self.process.kill)
        timer.start()
        line = self.process.stdout.readline()
        timer.cancel()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if not match:
            self.stop()
            raise SystemExit("conformance: the fake did not start (%s said %r)" % (binary, line))
        self.base = match.group(1)
        self.now = now

    def at(self, instant):
        """Moves the fake's clock (its control endpoint)."""
        request = urllib.request.Request(self.base + "/__fake/now", data=iso(instant).encode(), method="POST")
        with OPENER.open(request, timeout=30) as response:
            response.read()
        self.now = instant

    def stop(self):
        try:
            self.process.stdin.close()
            self.process.wait(timeout=5)
        except Exception:
            self.process.kill()
            self.process.wait()


OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def raw_get(url, where):
    """GET a full URL by hand: (status, headers, JSON body). Error bodies are recorded."""
    try:
        with OPENER.open(url, timeout=30) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = json.loads(error.read())
        ERROR_BODIES.append((where, body))
        return error.code, error.headers, body


# ---------------------------------------------------------------------------------------
# Memoised steps several checks share (a failure is remembered and re-raised as such).


def once(function):
    memo = {}

    def wrapper(*args):
        if args not in memo:
            try:
                memo[args] = (True, function(*args))
            except Exception as error:  # noqa: BLE001
                memo[args] = (False, error)
        ok, value = memo[args]
        if not ok:
            raise Mismatch("prerequisite %s%s failed: %s" % (function.__name__, args or "",
                                                              describe(value) if isinstance(value, FacebookRequestError) else value))
        return value
    return wrapper


def main():
    if apiconfig.ads_api_config["SDK_VERSION"] != SDK_VERSION:
        raise SystemExit("conformance: facebook-business %s is installed; this suite is pinned to %s"
                         % (apiconfig.ads_api_config["SDK_VERSION"], SDK_VERSION))
    binary = Path(os.environ.get("GRAPH_FAKE") or REPO / ".build/debug/graph-fake")
    scenario_path = Path(os.environ.get("GRAPH_CONFORMANCE_SCENARIO") or REPO / "fixtures/scenarios/conformance.json")
    if not os.access(binary, os.X_OK):
        raise SystemExit("conformance: no graph-fake at %s (swift build --product graph-fake, or set GRAPH_FAKE)" % binary)
    scenario = json.loads(scenario_path.read_text(encoding="utf-8"))
    app_id, app_secret = scenario["app_id"], scenario["app_secret"]
    tokens = {t["token"]: t for t in scenario["tokens"]}
    forms = {f["id"]: f for p in scenario["pages"] for f in p["forms"]}
    pages = {p["id"]: p for p in scenario["pages"]}

    # The suite's start: the short-lived user token's issue (the user authorises the app).
    t0 = parse_instant(tokens[USER_SHORT]["issued_at"])

    fake = Fake(binary, scenario_path, t0)
    started = time.monotonic()
    try:
        suite = Suite()
        run(suite, fake, t0, app_id, app_secret, tokens, forms, pages)
    finally:
        fake.stop()
    failed = [r for r in suite.results if not r[1]]
    print("%d checks: %d ok, %d failed (%.1f s)" % (len(suite.results), len(suite.results) - len(failed), len(failed),
                                                    time.monotonic() - started))
    return 1 if failed else 0


def run(suite, fake, t0, app_id, app_secret, tokens, forms, pages):
    check = suite.check
    # Point the SDK at the fake: FacebookSession.GRAPH is what FacebookAdsApi.call joins
    # with the version and the path (facebook_business/api.py).
    FacebookSession.GRAPH = fake.base
    FacebookAdsApi.init(app_id=app_id, app_secret=app_secret, access_token=PAGE_TOKEN, api_version=API_VERSION,
                        crash_log=False)

    def sdk(token, secret=app_secret):
        """An SDK api for a token; `secret` None sends no appsecret_proof."""
        return FacebookAdsApi(FacebookSession(app_id, secret, token), api_version=API_VERSION)

    def proof(token):
        return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()

    app_api = sdk("%s|%s" % (app_id, app_secret))
    anonymous = FacebookAdsApi(FacebookSession(), api_version=API_VERSION)
    page_api = sdk(PAGE_TOKEN)

    def debug_token(token):
        return app_api.call("GET", ("debug_token",), params={"input_token": token}).json()["data"]

    def lead_times(form_id):
        g = forms[form_id]["generate"]
        start = epoch(parse_instant(g["start"]))
        return [start + i * g.get("spacing_seconds", 60) for i in range(g["count"])]

    @once
    def exchange():
        # GET /oauth/access_token?grant_type=fb_exchange_token&client_id&client_secret&fb_exchange_token
        fake.at(t0)
        return anonymous.call("GET", ("oauth", "access_token"), params={
            "grant_type": "fb_exchange_token", "client_id": app_id, "client_secret": app_secret,
            "fb_exchange_token": USER_SHORT}).json()

    def long_token():
        answer = exchange()
        expect_true(answer.get("access_token"), "the exchange gave no access_token: %s" % short(answer))
        return answer["access_token"]

    @once
    def accounts(user_token):
        """me/accounts of a user token, by Page id (the raw entries)."""
        cursor = User("me", api=sdk(user_token)).get_accounts(fields=["id", "name", "access_token"])
        return {entry._json["id"]: entry._json for entry in cursor}

    def page_token_of(user_token, page_id):
        entry = accounts(user_token).get(page_id)
        expect_true(entry and entry.get("access_token"), "me/accounts gave no access_token for Page %s" % page_id)
        return entry["access_token"]

    def page_token_long(page_id):
        return page_token_of(long_token(), page_id)

    @once
    def leads_of(form_id, token):
        cursor = LeadgenForm(form_id, api=sdk(token)).get_leads(fields=LEAD_READ_FIELDS, params={"limit": 100})
        return [lead._json for lead in cursor]

    @once
    def raw_pages():
        """The active form's leads page by page as Graph answers (SDK call, raw JSON), limit 25."""
        result, after = [], None
        for _ in range(100):
            params = {"fields": "id,created_time", "limit": 25}
            if after:
                params["after"] = after
            page = page_api.call("GET", (FORM_ACTIVE, "leads"), params=params).json()
            result.append(page)
            paging = page.get("paging", {})
            if "next" not in paging or not page.get("data"):
                return result
            after = paging["cursors"]["after"]
        raise Mismatch("more than 100 pages of 25 leads")

    def ids(page):
        return [item["id"] for item in page.get("data", [])]

    # =====================================================================================
    # At the start: the user has just authorised the app.
    fake.at(t0)

    # --- appsecret_proof ------------------------------------------------------------------
    def right_secret():
        page = Page(PAGE_A, api=page_api).api_get(fields=["id", "name"])
        expect(page._json, {"id": PAGE_A, "name": pages[PAGE_A]["name"]}, "GET /%s?fields=id,name" % PAGE_A)
    check("appsecret_proof.right_secret_accepted", D_PROOF, right_secret)

    def wrong_secret():
        error = graph_error("wrong secret", lambda: Page(PAGE_A, api=sdk(PAGE_TOKEN, "not-the-app-secret")).api_get(fields=["id"]))
        expect_error(error, http=400, code=100, type="GraphMethodException",
                     message="Invalid appsecret_proof provided in the API argument")
    check("appsecret_proof.wrong_secret_refused_100", D_PROOF_ERR, wrong_secret)

    def other_tokens_proof():
        query = urllib.parse.urlencode({"fields": "id", "access_token": PAGE_TOKEN, "appsecret_proof": proof(USER_SHORT)})
        status, _, body = raw_get("%s/%s/%s?%s" % (fake.base, API_VERSION, PAGE_A, query), "proof for another token")
        error = body.get("error", {})
        expect((status, error.get("code"), error.get("type"), error.get("message")),
               (400, 100, "GraphMethodException", "Invalid appsecret_proof provided in the API argument"),
               "GET /%s with the proof of another token (status, code, type, message)" % PAGE_A)
    check("appsecret_proof.proof_for_another_token_refused_100", D_PROOF_ERR, other_tokens_proof)

    def no_proof():
        error = graph_error("no proof", lambda: Page(PAGE_A, api=sdk(PAGE_TOKEN, None)).api_get(fields=["id"]))
        expect_error(error, http=400, code=100, type="GraphMethodException",
                     message="API calls from the server require an appsecret_proof argument")
    check("appsecret_proof.missing_refused_when_app_requires_it", D_REQUIRE_SECRET, no_proof)

    # --- the user and the token exchange ------------------------------------------------
    def me():
        user = User("me", api=sdk(USER_SHORT)).api_get(fields=["id", "name"])
        expect(user._json, {"id": tokens[USER_SHORT]["user_id"], "name": tokens[USER_SHORT]["user_name"]},
               "GET /me?fields=id,name")
    check("user.me_fields_id_name", D_OVERVIEW, me)

    def exchange_expires_in():
        answer = exchange()
        expect_true(answer.get("access_token") not in (None, USER_SHORT), "no new access_token: %s" % short(answer))
        expect(answer.get("expires_in"), LONG_LIVED, "expires_in")
    check("exchange.fb_exchange_token_expires_in_5184000", D_LONG_LIVED, exchange_expires_in)

    def exchanged_debug():
        data = debug_token(long_token())
        expect((data.get("type"), data.get("expires_at")), ("USER", epoch(t0) + LONG_LIVED),
               "debug_token(long-lived) (type, expires_at)")
    check("exchange.debug_token_type_user_expires_now_plus_60_days", D_DEBUG_TOKEN, exchanged_debug)

    # --- Page tokens from me/accounts ----------------------------------------------------
    def accounts_pages():
        expect(sorted(accounts(long_token())), sorted(tokens[USER_SHORT]["pages"]), "me/accounts Page ids")
    check("me_accounts.lists_the_users_pages", D_PAGE_TOKEN, accounts_pages)

    def page_token_differs():
        user, page = long_token(), page_token_long(PAGE_A)
        expect_true(page != user, "me/accounts gave the user token itself as the Page token")
    check("me_accounts.page_token_differs_from_user_token", D_PAGE_TOKEN, page_token_differs)

    def page_token_never_expires():
        data = debug_token(page_token_long(PAGE_A))
        expect((data.get("type"), data.get("profile_id"), data.get("expires_at")), ("PAGE", PAGE_A, 0),
               "debug_token(Page token from the long-lived user token) (type, profile_id, expires_at)")
    check("debug_token.page_token_from_long_lived_user_never_expires", D_PAGE_TOKEN, page_token_never_expires)

    def page_token_short():
        user = debug_token(USER_SHORT).get("expires_at")
        page = debug_token(page_token_of(USER_SHORT, PAGE_A)).get("expires_at")
        expect((page, user), (epoch(t0) + SHORT_LIVED, epoch(t0) + SHORT_LIVED),
               "expires_at of (the Page token from the short-lived user token, that user token)")
    check("debug_token.page_token_from_short_lived_user_expires_with_it", D_PAGE_TOKEN, page_token_short)

    def data_access_at():
        data = debug_token(long_token())
        expect(data.get("data_access_expires_at"), epoch(t0) + DATA_ACCESS,
               "debug_token(long-lived).data_access_expires_at (authorised at %s)" % iso(t0))
    check("data_access.expires_90_days_after_authorisation", D_DATA_ACCESS, data_access_at)

    # --- forms and fields ----------------------------------------------------------------
    def forms_listed():
        cursor = Page(PAGE_A, api=page_api).get_lead_gen_forms(fields=["id", "name", "status"])
        got = {form._json["id"]: form._json.get("status") for form in cursor}
        expect(got, {f["id"]: f.get("status", "ACTIVE") for f in pages[PAGE_A]["forms"]},
               "GET /%s/leadgen_forms (id: status)" % PAGE_A)
    check("forms.leadgen_forms_lists_every_form_archived_too", D_FORMS, forms_listed)

    def only_id():
        cursor = LeadgenForm(FORM_ACTIVE, api=page_api).get_leads(fields=["id"], params={"limit": 10})
        keys = {tuple(sorted(lead._json)) for lead in cursor[:10]}
        expect(keys, {("id",)}, "member names of leads read with fields=id")
    check("fields.only_requested_fields_come_back", D_FIELDS, only_id)

    def bogus_field():
        error = graph_error("bogus field", lambda: LeadgenForm(FORM_ACTIVE, api=page_api).api_get(
            fields=["id", "name", "bogus_field"]))
        expect_error(error, http=400, code=100, type="OAuthException",
                     message="(#100) Tried accessing nonexisting field (bogus_field) on node type (LeadgenForm)")
    check("fields.nonexisting_field_refused_100", D_FIELDS, bogus_field)

    def form_node():
        form = LeadgenForm(FORM_ACTIVE, api=page_api).api_get(fields=["id", "name", "status"])
        f = forms[FORM_ACTIVE]
        expect(form._json, {"id": f["id"], "name": f["name"], "status": f.get("status", "ACTIVE")},
               "GET /%s?fields=id,name,status" % FORM_ACTIVE)
    check("fields.form_node_read_by_id", D_SDK_FORM, form_node)

    form_fields = [getattr(LeadgenForm.Field, n) for n in dir(LeadgenForm.Field) if not n.startswith("_")]
    lead_fields = [getattr(Lead.Field, n) for n in dir(Lead.Field) if not n.startswith("_")]

    def every_form_field():
        form = LeadgenForm(FORM_ACTIVE, api=page_api).api_get(fields=form_fields)._json
        questions, page = form.get("questions"), form.get("page")
        expect_true(isinstance(questions, list) and questions and all("key" in q for q in questions),
                    "questions: got %s, expected a non-empty list of {key,…}" % short(questions))
        expect(isinstance(page, dict) and page.get("id"), PAGE_A, "page.id")
    check("fields.all_%d_leadgenform_fields_together" % len(form_fields), D_SDK_FORM, every_form_field)

    def every_lead_field():
        cursor = LeadgenForm(FORM_ACTIVE, api=page_api).get_leads(fields=lead_fields, params={"limit": 5})
        leads = [lead._json for lead in cursor[:5]]
        expect_true(len(leads) == 5 and all({"id", "created_time", "field_data"} <= set(lead) for lead in leads),
                    "leads read with all fields: %s" % short(leads))
    check("fields.all_%d_lead_fields_together" % len(lead_fields), D_SDK_LEAD, every_lead_field)

    def edge_expansion():
        form = LeadgenForm(FORM_ACTIVE, api=page_api).api_get(fields=["id", "leads.limit(5){id,created_time}"])._json
        leads = form.get("leads") if isinstance(form.get("leads"), dict) else {}
        expect((len(leads.get("data", [])), {tuple(sorted(l)) for l in leads.get("data", [])}, "next" in leads.get("paging", {})),
               (5, {("created_time", "id")}, True), "leads.limit(5){id,created_time} inside the form (rows, members, has next)")
    check("fields.edge_expansion_nests_data_and_paging", "https://developers.facebook.com/docs/graph-api/guides/field-expansion/", edge_expansion)

    def page_fields_access_token():
        page = Page(PAGE_A, api=sdk(USER_SHORT)).api_get(fields=["access_token"])._json
        token = page.get("access_token")
        expect_true(token and token != USER_SHORT, "GET /%s?fields=access_token gave %s" % (PAGE_A, short(page)))
        data = debug_token(token)
        expect((data.get("type"), data.get("profile_id")), ("PAGE", PAGE_A), "debug_token of it (type, profile_id)")
    check("page.fields_access_token_gives_a_page_token", D_ACCESS_TOKENS, page_fields_access_token)

    def leadgen_forms_page_token_only():
        error = graph_error("leadgen_forms with a user token",
                            lambda: Page(PAGE_A, api=sdk(USER_SHORT)).get_lead_gen_forms(fields=["id"]))
        expect(error.http_status(), 400, "HTTP status of GET /%s/leadgen_forms with a user token (%s)" % (PAGE_A, describe(error)))
    check("forms.leadgen_forms_requires_a_page_token", "https://developers.facebook.com/docs/graph-api/reference/page/leadgen_forms/", leadgen_forms_page_token_only)

    # --- usage headers ---------------------------------------------------------------------
    @once
    def page_token_headers():
        cursor = Page(PAGE_A, api=page_api).get_lead_gen_forms(fields=["id"])
        return cursor.headers()

    def buc_header():
        headers = page_token_headers()
        text = headers.get("X-Business-Use-Case-Usage")
        expect_true(text, "no X-Business-Use-Case-Usage on a Page-token call (headers: %s)" % short(dict(headers)))
        usage = json.loads(text)
        expect(list(usage), [PAGE_A], "X-Business-Use-Case-Usage keys")
        want = {"type", "call_count", "total_cputime", "total_time", "estimated_time_to_regain_access"}
        kinds = {"ads_insights", "ads_management", "custom_audience", "instagram", "leadgen", "messenger", "pages"}
        bad = [e for e in usage[PAGE_A] if not want <= set(e) or e.get("type") not in kinds]
        expect_true(isinstance(usage[PAGE_A], list) and usage[PAGE_A] and not bad,
                    "entries %s lack %s or have a type outside %s" % (short(usage[PAGE_A]), sorted(want), sorted(kinds)))
    check("usage.page_token_call_has_buc_header_keyed_by_page", D_RATE, buc_header)

    def no_app_usage():
        expect(page_token_headers().get("X-App-Usage"), None, "X-App-Usage on a Page-token call")
    check("usage.page_token_call_counts_against_buc_not_app", D_RATE, no_app_usage)

    def app_usage():
        cursor = User("me", api=sdk(USER_SHORT)).get_accounts(fields=["id"])
        text = cursor.headers().get("X-App-Usage")
        expect_true(text, "no X-App-Usage on a user-token call (headers: %s)" % short(dict(cursor.headers())))
        expect(sorted(json.loads(text)), ["call_count", "total_cputime", "total_time"], "X-App-Usage keys")
    check("usage.user_token_call_has_x_app_usage", D_RATE, app_usage)

    # --- has_lead_access ---------------------------------------------------------------------
    declining_user = tokens[USER_DECLINES]["user_id"]

    def lead_access():
        api = sdk(page_token_of(USER_DECLINES, PAGE_A))
        page = Page(PAGE_A, api=api).api_get(fields=["has_lead_access.user_id(%s)" % declining_user])._json
        access = page.get("has_lead_access") or {}
        expect((access.get("user_id"), access.get("can_access_lead")), (declining_user, True),
               "has_lead_access.user_id(%s) (user_id, can_access_lead)" % declining_user)
    check("has_lead_access.user_id_modifier_with_leads_retrieval", D_HAS_LEAD_ACCESS, lead_access)

    def lead_access_together():
        page = Page(PAGE_A, api=page_api).api_get(fields=["id", "name", "has_lead_access"])._json
        expect(sorted(page), ["has_lead_access", "id", "name"], "members of GET /%s?fields=id,name,has_lead_access" % PAGE_A)
    check("has_lead_access.served_with_other_fields", D_HAS_LEAD_ACCESS, lead_access_together)

    # --- paging ------------------------------------------------------------------------------
    active_count = forms[FORM_ACTIVE]["generate"]["count"]

    def cursor_every_lead():
        cursor = LeadgenForm(FORM_ACTIVE, api=page_api).get_leads(fields=["id"], params={"limit": 25})
        seen = [lead["id"] for lead in cursor]
        expect((len(seen), len(set(seen))), (active_count, active_count), "SDK Cursor over /%s/leads (leads, distinct)" % FORM_ACTIVE)
    check("paging.cursor_returns_every_lead_once", D_CURSOR, cursor_every_lead)

    def default_limit():
        cursor = LeadgenForm(FORM_ACTIVE, api=page_api).get_leads(fields=["id"])
        expect(len(cursor), 25, "leads on the first page without limit")
    check("paging.default_limit_is_25", "GRAPH_API.md 'Paging' ; https://developers.facebook.com/docs/graph-api/results/", default_limit)

    def next_absent_at_end():
        walk = raw_pages()
        with_next = [("next" in p.get("paging", {})) for p in walk]
        total = sum(len(p.get("data", [])) for p in walk)
        expect((total, with_next[-1], all(with_next[:-1])), (active_count, False, True),
               "(leads walked, last page has next, every earlier page has next)")
    check("paging.next_absent_on_the_last_page", D_RESULTS, next_absent_at_end)

    def previous_absent_first():
        expect("previous" in raw_pages()[0].get("paging", {}), False, "paging.previous on the first page")
    check("paging.previous_absent_on_the_first_page", D_RESULTS, previous_absent_first)

    def previous_on_later():
        paging = raw_pages()[1].get("paging", {})
        expect(("previous" in paging, "before" in paging.get("cursors", {})), (True, True),
               "page 2 (has paging.previous, has paging.cursors.before)")
    check("paging.previous_and_before_on_later_pages", D_RESULTS, previous_on_later)

    def before_backwards():
        walk = raw_pages()
        before = walk[2]["paging"]["cursors"]["before"]
        page = page_api.call("GET", (FORM_ACTIVE, "leads"),
                             params={"fields": "id,created_time", "limit": 25, "before": before}).json()
        expect(ids(page), ids(walk[1]), "ids of before=<page 3's before cursor>")
    check("paging.before_cursor_returns_the_preceding_page", D_RESULTS, before_backwards)

    def follow_previous():
        walk = raw_pages()
        status, _, page = raw_get(walk[2]["paging"]["previous"], "previous link")
        expect((status, ids(page)), (200, ids(walk[1])), "GET <page 3's paging.previous> (status, ids)")
    check("paging.previous_link_returns_the_preceding_page", D_RESULTS, follow_previous)

    def follow_next():
        walk = raw_pages()
        status, _, page = raw_get(walk[0]["paging"]["next"], "next link")
        expect((status, ids(page)), (200, ids(walk[1])), "GET <page 1's paging.next> (status, ids)")
    check("paging.next_link_returns_the_following_page", D_RESULTS, follow_next)

    def next_has_token():
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(raw_pages()[0]["paging"]["next"]).query)
        expect(query.get("access_token"), [PAGE_TOKEN], "access_token in the next URL's query")
    check("paging.next_url_carries_access_token", D_NEXT_TOKEN, next_has_token)

    # --- filtering -----------------------------------------------------------------------------
    times = lead_times(FORM_ACTIVE)

    def filtered(clauses):
        cursor = LeadgenForm(FORM_ACTIVE, api=page_api).get_leads(
            fields=["id", "created_time"], params={"limit": 100, "filtering": clauses})
        return sorted(epoch(parse_instant(lead["created_time"])) for lead in cursor)

    def greater_than():
        pivot = times[100]
        got = filtered([{"field": "time_created", "operator": "GREATER_THAN", "value": pivot}])
        expect_true(got == [t for t in times if t > pivot],
                    "GREATER_THAN %d gave %d leads from %s, expected %d from %d" % (
                        pivot, len(got), got[:1], len([t for t in times if t > pivot]), pivot + 600))
    check("filtering.greater_than_is_strict", D_FILTERING, greater_than)

    def less_than():
        pivot = times[100]
        got = filtered([{"field": "time_created", "operator": "LESS_THAN", "value": pivot}])
        expect_true(got == [t for t in times if t < pivot],
                    "LESS_THAN %d gave %d leads up to %s, expected %d up to %d" % (
                        pivot, len(got), got[-1:], len([t for t in times if t < pivot]), pivot - 600))
    check("filtering.less_than_is_strict", D_FILTERING, less_than)

    def window_seconds():
        low, high = times[50], times[59]
        got = filtered([{"field": "time_created", "operator": "GREATER_THAN", "value": low - 1},
                        {"field": "time_created", "operator": "LESS_THAN", "value": high + 1}])
        expect(got, times[50:60], "created seconds of GREATER_THAN %d and LESS_THAN %d" % (low - 1, high + 1))
    check("filtering.window_bounds_are_unix_seconds", D_FILTERING, window_seconds)

    # --- errors ------------------------------------------------------------------------------
    def unknown_edge():
        error = graph_error("unknown edge", lambda: page_api.call("GET", (PAGE_A, "bogus_edge")))
        expect_error(error, http=400, code=2500, type="OAuthException", message="Unknown path components: /bogus_edge")
    check("errors.unknown_edge_2500", D_UNKNOWN_PATH, unknown_edge)

    def object_missing():
        error = graph_error("missing object", lambda: LeadgenForm(MISSING_ID, api=page_api).api_get(fields=["id"]))
        expect_error(error, http=400, code=100, subcode=33, type="GraphMethodException",
                     message="Unsupported get request. Object with ID '%s' does not exist, cannot be loaded due to missing "
                             "permissions, or does not support this operation. Please read the Graph API documentation at "
                             "https://developers.facebook.com/docs/graph-api" % MISSING_ID)
    check("errors.object_missing_100_33_names_the_id", D_MISSING, object_missing)

    # --- lead shapes ---------------------------------------------------------------------------
    def created_format():
        bad = [l.get("created_time") for l in leads_of(FORM_ACTIVE, PAGE_TOKEN)
               if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", str(l.get("created_time")))]
        expect(bad, [], "created_time values not like 2026-11-01T12:34:56+0000")
    check("lead.created_time_graph_format", D_LEAD_SHAPE, created_format)

    def ids_strings():
        bad = [(k, l[k]) for l in leads_of(FORM_ACTIVE, PAGE_TOKEN)
               for k in ("id", "form_id", "ad_id", "adset_id", "campaign_id") if k in l and not isinstance(l[k], str)]
        expect(bad[:5], [], "ids that are not strings")
    check("lead.ids_are_strings", D_LEAD_SHAPE, ids_strings)

    def field_data_shape():
        bad = [f for l in leads_of(FORM_ACTIVE, PAGE_TOKEN) for f in l.get("field_data", [None])
               if not (isinstance(f, dict) and set(f) == {"name", "values"} and isinstance(f["name"], str)
                       and isinstance(f["values"], list) and all(isinstance(v, str) for v in f["values"]))]
        expect(bad[:3], [], "field_data entries not {name: str, values: [str]}")
    check("lead.field_data_name_values_strings", D_LEAD_SHAPE, field_data_shape)

    def disclaimer_string():
        answers = [c for l in leads_of(FORM_ACTIVE, PAGE_TOKEN) for c in l.get("custom_disclaimer_responses", [])]
        expect_true(answers, "no custom_disclaimer_responses came back")
        bad = [c for c in answers if not isinstance(c.get("is_checked"), str) or not isinstance(c.get("checkbox_key"), str)]
        expect(bad[:3], [], "custom_disclaimer_responses with a non-string is_checked/checkbox_key")
    check("lead.custom_disclaimer_is_checked_is_a_string", D_LEAD_SHAPE, disclaimer_string)

    def organic_no_ads():
        leads = leads_of(FORM_ORGANIC, page_token_long(PAGE_B))
        bad = [l for l in leads if l.get("is_organic") is not True or any(k in l for k in AD_FIELDS)]
        expect((len(leads), bad[:2]), (forms[FORM_ORGANIC]["generate"]["count"], []),
               "(organic leads read, leads with ad fields or is_organic not true)")
    check("lead.organic_leads_have_no_ad_fields", D_LEAD_SHAPE, organic_no_ads)

    def custom_keys():
        leads = leads_of(FORM_CUSTOM, PAGE_TOKEN)
        bad = [l["id"] for l in leads if not CUSTOM_KEYS <= {f["name"] for f in l.get("field_data", [])}]
        expect((len(leads), bad[:3]), (forms[FORM_CUSTOM]["generate"]["count"], []),
               "(leads read, leads whose field_data lack the question-text keys)")
    check("lead.custom_question_keys_are_the_question_text", D_LEAD_SHAPE, custom_keys)

    def questions_match_field_data():
        form = LeadgenForm(FORM_CUSTOM, api=page_api).api_get(fields=["id", "questions"])._json
        keys = {q.get("key") for q in form.get("questions", [])}
        names = {f["name"] for l in leads_of(FORM_CUSTOM, PAGE_TOKEN) for f in l.get("field_data", [])}
        expect(sorted(keys), sorted(names), "form questions[].key vs its leads' field_data[].name")
    check("form.question_keys_are_the_field_data_names", D_LEAD_SHAPE, questions_match_field_data)

    def lead_by_id():
        lead_id = next(l["id"] for l in leads_of(FORM_ACTIVE, PAGE_TOKEN) if "ad_id" in l)
        lead = Lead(lead_id, api=page_api).api_get()._json
        expect((lead.get("id"), lead.get("form_id"), {"created_time", "id", "ad_id", "form_id", "field_data"} <= set(lead)),
               (lead_id, FORM_ACTIVE, True), "GET /%s without fields (id, form_id, has created_time,id,ad_id,form_id,field_data); got %s"
               % (lead_id, sorted(lead)))
    check("lead.read_by_id_without_fields", D_RETRIEVING, lead_by_id)

    # --- batch -------------------------------------------------------------------------------------
    @once
    def batch_answers():
        answers = []

        def on(index, outcome):
            return lambda response: answers.append((index, outcome, response.status(), response.json()))

        batch = page_api.new_batch()
        LeadgenForm(FORM_ACTIVE, api=page_api).api_get(fields=["id", "name"], batch=batch,
                                                        success=on(0, "success"), failure=on(0, "failure"))
        LeadgenForm(FORM_ACTIVE, api=page_api).get_leads(fields=["id"], params={"limit": 5}, batch=batch,
                                                          success=on(1, "success"), failure=on(1, "failure"))
        LeadgenForm(MISSING_ID, api=page_api).api_get(fields=["id"], batch=batch,
                                                       success=on(2, "success"), failure=on(2, "failure"))
        retry = batch.execute()
        expect_true(retry is None, "the batch left calls to retry (null answers)")
        for _, outcome, _, body in answers:
            if outcome == "failure":
                ERROR_BODIES.append(("batch call", body))
        return answers

    def batch_order():
        got = [(index, code) for index, _, code, _ in batch_answers()]
        expect(got, [(0, 200), (1, 200), (2, 400)], "(call, code) in answer order")
    check("batch.answers_each_call_in_order_with_its_code", D_BATCH, batch_order)

    def batch_alone():
        answers = {index: (outcome, body) for index, outcome, _, body in batch_answers()}
        error = answers.get(2, (None, {}))[1].get("error", {})
        got = (answers.get(0, (None, {}))[0], answers.get(0, (None, {}))[1].get("id"),
               answers.get(1, (None, {}))[0], len(answers.get(1, (None, {}))[1].get("data", [])),
               answers.get(2, (None, {}))[0], error.get("code"), error.get("error_subcode"), MISSING_ID in error.get("message", ""))
        expect(got, ("success", FORM_ACTIVE, "success", 5, "failure", 100, 33, True),
               "(form call, its id, leads call, leads, missing-object call, code, subcode, names the id)")
    check("batch.failing_call_fails_alone", D_BATCH, batch_alone)

    def batch_of_51():
        batch = page_api.new_batch()
        for _ in range(51):
            LeadgenForm(FORM_ACTIVE, api=page_api).api_get(fields=["id"], batch=batch)
        error = graph_error("batch of 51", batch.execute)
        expect(error.http_status(), 400, "HTTP status of a 51-call batch (%s)" % describe(error))
    check("batch.more_than_50_calls_refused", "https://developers.facebook.com/docs/graph-api/batch-requests/ (limited to 50 requests per batch)", batch_of_51)

    # =====================================================================================
    # An hour later: the short-lived user token (and Page tokens from it) end.
    def short_lived_ends():
        fake.at(t0 + timedelta(seconds=SHORT_LIVED - 60))
        User("me", api=sdk(USER_SHORT)).api_get(fields=["id"])
        fake.at(t0 + timedelta(seconds=SHORT_LIVED + 60))
        error = graph_error("short-lived expired", lambda: User("me", api=sdk(USER_SHORT)).api_get(fields=["id"]))
        expect_error(error, http=400, code=190, subcode=463, type="OAuthException")
    check("token.short_lived_user_token_ends_after_1_hour_190_463", D_ACCESS_TOKENS + " ; " + D_TOKEN_ERRORS, short_lived_ends)

    def short_page_token_ends():
        token = page_token_of(USER_SHORT, PAGE_A)
        fake.at(t0 + timedelta(seconds=SHORT_LIVED + 60))
        error = graph_error("page token of short-lived", lambda: Page(PAGE_A, api=sdk(token)).api_get(fields=["id"]))
        expect_error(error, code=190, subcode=463)
    check("page_token.from_short_lived_user_ends_with_it_190_463", D_PAGE_TOKEN, short_page_token_ends)

    # Two hours in: one user declined leads_retrieval, another changed their password.
    after_events = t0 + timedelta(hours=2)

    def lead_access_refused():
        token = page_token_of(USER_DECLINES, PAGE_A)
        fake.at(after_events)
        error = graph_error("has_lead_access declined", lambda: Page(PAGE_A, api=sdk(token)).api_get(
            fields=["has_lead_access.user_id(%s)" % declining_user]))
        expect_error(error, http=400, code=200)
    check("has_lead_access.refused_200_once_leads_retrieval_declined", D_HAS_LEAD_ACCESS, lead_access_refused)

    def leads_refused():
        token = page_token_of(USER_DECLINES, PAGE_A)
        fake.at(after_events)
        error = graph_error("leads declined", lambda: list(LeadgenForm(FORM_ACTIVE, api=sdk(token)).get_leads(fields=["id"])))
        expect_error(error, http=400, code=200, type="OAuthException")
    check("token.declined_leads_retrieval_reading_leads_200", D_PERMISSION, leads_refused)

    def permissions_declined():
        fake.at(after_events)
        cursor = User("me", api=sdk(USER_DECLINES)).get_permissions()
        statuses = {p._json.get("permission"): p._json.get("status") for p in cursor}
        expect(statuses.get("leads_retrieval"), "declined", "me/permissions leads_retrieval status")
    check("permissions.declined_shows_in_me_permissions", "https://developers.facebook.com/docs/graph-api/reference/user/permissions/ ; GRAPH_API.md 'Tokens and the 90 days'", permissions_declined)

    def password_changed():
        fake.at(after_events)
        error = graph_error("password changed", lambda: Page(PAGE_B, api=sdk(USER_PASSWORD)).api_get(fields=["id"]))
        expect_error(error, http=400, code=190, subcode=460, type="OAuthException")
    check("token.password_change_190_460", D_TOKEN_ERRORS + " ; " + D_ERRORS, password_changed)

    # =====================================================================================
    # Day 60: the long-lived user token ends; the Page token from it does not.
    expiry = t0 + timedelta(seconds=LONG_LIVED)

    def long_lived_until_day_60():
        token = long_token()
        fake.at(expiry - timedelta(minutes=1))
        User("me", api=sdk(token)).api_get(fields=["id"])
        fake.at(expiry + timedelta(minutes=1))
        error = graph_error("long-lived expired", lambda: User("me", api=sdk(token)).api_get(fields=["id"]))
        expect_error(error, http=400, code=190, subcode=463, type="OAuthException")
    check("exchange.long_lived_works_until_day_60_then_190_463", D_LONG_LIVED + " ; " + D_TOKEN_ERRORS, long_lived_until_day_60)

    def expired_message():
        token = long_token()
        now = expiry + timedelta(minutes=1)
        fake.at(now)
        error = graph_error("long-lived expired", lambda: User("me", api=sdk(token)).api_get(fields=["id"]))
        expect_error(error, message="Error validating access token: Session has expired on %s. The current time is %s."
                     % (pacific(expiry), pacific(now)))
    check("token.expired_message_names_both_instants_in_pacific_time", D_TOKEN_ERRORS, expired_message)

    def debug_expired():
        fake.at(expiry + timedelta(minutes=1))
        data = debug_token(long_token())
        expect((data.get("is_valid"), isinstance(data.get("error"), dict)), (False, True),
               "debug_token(expired long-lived token) (is_valid, has error)")
    check("debug_token.expired_token_is_invalid_with_error", D_DEBUG_TOKEN + " ; GRAPH_API.md 'Tokens and the 90 days'", debug_expired)

    def page_token_outlives():
        token = page_token_long(PAGE_A)
        fake.at(expiry + timedelta(days=1))
        page = Page(PAGE_A, api=sdk(token)).api_get(fields=["id"])
        expect(page._json.get("id"), PAGE_A, "GET /%s with the Page token on day 61" % PAGE_A)
    check("page_token.from_long_lived_user_works_after_day_60", D_PAGE_TOKEN, page_token_outlives)

    # =====================================================================================
    # Day 90: data access lapses.
    lapse = t0 + timedelta(seconds=DATA_ACCESS)

    def data_access_lapses():
        token = page_token_long(PAGE_A)
        fake.at(lapse - timedelta(minutes=1))
        Page(PAGE_A, api=sdk(token)).api_get(fields=["id"])
        fake.at(lapse + timedelta(minutes=1))
        error = graph_error("data access expired", lambda: Page(PAGE_A, api=sdk(token)).api_get(fields=["id"]))
        expect_error(error, http=400, code=190, subcode=493)
    check("data_access.calls_fail_190_493_after_90_days", D_DATA_ACCESS_ERR, data_access_lapses)

    # =====================================================================================
    def fbtrace():
        missing = [where for where, body in ERROR_BODIES
                   if not (isinstance(body, dict) and isinstance(body.get("error"), dict) and body["error"].get("fbtrace_id"))]
        expect_true(len(ERROR_BODIES) >= 10, "only %d error envelopes were seen" % len(ERROR_BODIES))
        expect(missing, [], "error envelopes (of %d seen) without error.fbtrace_id" % len(ERROR_BODIES))
    check("errors.every_envelope_has_fbtrace_id", D_ERRORS, fbtrace)


if __name__ == "__main__":
    sys.exit(main())
