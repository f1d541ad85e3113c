#!/usr/bin/env python3
"""The benchmark's baseline: LeadFlow's job done by a short, plain Python script.

requests + json + psycopg COPY + tarfile, 4 threads: for every Page, list its forms, read
every form's leads page by page (cursor paging, appsecret_proof), transform each lead into
the columns of Integrate's `leads` table, COPY them in (one transaction per form), and
archive the raw pages (tar.gz per Page; the standard library has no zstd). It skips what
LeadFlow does on top (preflight, watermarks, rejections, exactly-once reruns): it is the
floor a hand-written pipeline reaches, not a replacement.

Usage: baseline_pipeline.py GRAPH_URL APP_SECRET DATABASE_URL TABLE ARCHIVE_DIR USER_TOKEN...
Prints one line: `leads <n> seconds <s> leads_per_s <r> peak_mb <m>`.
"""

import hashlib
import hmac
import json
import queue
import resource
import sys
import tarfile
import threading
import time
from datetime import datetime, timezone
from io import BytesIO

import psycopg
import requests

GRAPH, SECRET, DATABASE_URL, TABLE, ARCHIVES = sys.argv[1:6]
USER_TOKENS = sys.argv[6:]
VERSION = "v25.0"
FORM_FIELDS = "id,name,status,leads_count"
LEAD_FIELDS = ("id,created_time,field_data,ad_id,adset_id,campaign_id,form_id,is_organic,platform,"
               "custom_disclaimer_responses")
COLUMNS = ("lead_id, instance, connection_id, page_id, form_id, form_name, source_id, ad_id, adset_id, campaign_id, "
           "is_organic, platform, created_at, email, first_name, last_name, company, job_title, phone, country, state, "
           "city, postal_code, consents, answers, raw_sha256, archive_id, first_run_id, last_run_id, loaded_at, updated_at")
STANDARD = {"email": "email", "work_email": "email", "full_name": "full_name", "first_name": "first_name",
            "last_name": "last_name", "phone_number": "phone", "company_name": "company", "job_title": "job_title",
            "country": "country", "state": "state", "city": "city", "zip_code": "postal_code"}
COUNTRIES = {"us": "US", "united states": "US", "france": "FR", "de": "DE", "germany": "DE", "japan": "JP", "gb": "GB",
             "united kingdom": "GB"}


def get(session, path, token, **params):
    proof = hmac.new(SECRET.encode(), token.encode(), hashlib.sha256).hexdigest()
    params.update(access_token=token, appsecret_proof=proof)
    response = session.get(f"{GRAPH}/{VERSION}/{path}", params=params, timeout=60)
    response.raise_for_status()
    return response.content, response.json()


def pages_of(session, path, token, **params):
    """Every page of a list, by its after cursor, until next is absent."""
    while True:
        raw, page = get(session, path, token, **params)
        yield raw, page
        paging = page.get("paging", {})
        if "next" not in paging:
            return
        params["after"] = paging["cursors"]["after"]


def transform(lead, page_id, form, now):
    values, answers = {}, {}
    for field in lead.get("field_data", []):
        key = STANDARD.get(field["name"])
        given = [v.replace("\x00", "") for v in field.get("values", [])]
        if key is None:
            answers.setdefault(field["name"], []).extend(given)
        elif key not in values and given and given[0].strip():
            values[key] = given[0].strip()
    email = values.get("email", "").lower() or None
    first, last = values.get("first_name"), values.get("last_name")
    if first is None and last is None and "full_name" in values:
        parts = values["full_name"].split(" ", 1)
        first, last = parts[0], parts[1] if len(parts) > 1 else None
    phone = values.get("phone")
    if phone:
        digits = "".join(c for c in phone if c.isdigit())
        phone = "+" + digits if phone.startswith("+") else phone
    country = COUNTRIES.get(values.get("country", "").lower())
    organic = lead.get("is_organic", False)
    created = datetime.strptime(lead["created_time"], "%Y-%m-%dT%H:%M:%S%z")
    consents = {c["checkbox_key"]: c["is_checked"] in ("1", "true") for c in lead.get("custom_disclaimer_responses", [])}
    raw_sha = hashlib.sha256(json.dumps(lead, sort_keys=True).encode()).hexdigest()
    return (lead["id"], "baseline", 1, page_id, form["id"], form["name"], "baseline",
            None if organic else lead.get("ad_id"), None if organic else lead.get("adset_id"),
            None if organic else lead.get("campaign_id"), organic, lead.get("platform"), created, email, first, last,
            values.get("company"), values.get("job_title"), phone, country, values.get("state"), values.get("city"),
            values.get("postal_code"), json.dumps(consents), json.dumps(answers), raw_sha, 1, 1, 1, now, now)


def work(jobs, totals, lock):
    session = requests.Session()
    with psycopg.connect(DATABASE_URL) as db:
        while True:
            try:
                page_id, token = jobs.get_nowait()
            except queue.Empty:
                return
            now = datetime.now(timezone.utc)
            archive = tarfile.open(f"{ARCHIVES}/{page_id}.tar.gz", "w:gz")
            loaded = 0
            for _, forms in pages_of(session, f"{page_id}/leadgen_forms", token, fields=FORM_FIELDS, limit=100):
                for form in forms["data"]:
                    rows = []
                    for number, (raw, page) in enumerate(pages_of(session, f"{form['id']}/leads", token,
                                                                  fields=LEAD_FIELDS, limit=100)):
                        info = tarfile.TarInfo(f"form-{form['id']}/page-{number:04d}.json")
                        info.size = len(raw)
                        archive.addfile(info, BytesIO(raw))
                        rows.extend(transform(lead, page_id, form, now) for lead in page["data"])
                    with db.transaction(), db.cursor().copy(f"COPY {TABLE} ({COLUMNS}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                    loaded += len(rows)
            archive.close()
            with lock:
                totals[0] += loaded


def main():
    session = requests.Session()
    jobs = queue.Queue()
    for user in USER_TOKENS:  # setup, not timed: each user token's Page token
        _, accounts = get(session, "me/accounts", user, fields="id,access_token")
        for account in accounts["data"]:
            jobs.put((account["id"], account["access_token"]))
    totals, lock = [0], threading.Lock()
    start = time.monotonic()
    threads = [threading.Thread(target=work, args=(jobs, totals, lock)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"leads {totals[0]} seconds {seconds:.2f} leads_per_s {totals[0] / seconds:.0f} peak_mb {peak:.1f}")


if __name__ == "__main__":
    main()
