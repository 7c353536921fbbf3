"""OWASP CRS regression corpus -> the cases an access log can show, as JSON Lines.

Usage: python3 crs_cases.py CRS_DIR   (CRS_DIR holds rules/ and tests/regression/tests/)
Exit 3 if PyYAML is missing. Used by tests/crs.rs; see docs/entrance.md.

A case is one test stage expecting a rule of the attack groups 930-934, 941, 942 to fire
(`log_contains: id "NNNNNN"`) whose payload is all in what a combined access log records:
  source "query": no body, a non-empty query string in the URI;
  source "body":  a form body (no or urlencoded content type) on a query-less URI; the
                  Rust side moves it into the query string, as a GET form would send it.
Cases with other headers (cookies, custom headers) or raw/encoded requests are left out:
the payload may be there. The rule's paranoia level is read from rules/*.conf.
"""
import glob
import json
import os
import re
import sys

try:
    import yaml
except ImportError:
    sys.exit(3)

root = sys.argv[1]
pl = {}
for conf in glob.glob(os.path.join(root, "rules", "REQUEST-9*.conf")):
    text = open(conf, encoding="utf-8", errors="replace").read()
    for block in re.split(r"\n(?=SecRule|SecAction)", text):
        m = re.search(r"\bid:(\d+)", block)
        p = re.search(r"paranoia-level/(\d)", block)
        if m and p:
            pl[m.group(1)] = int(p.group(1))

GROUPS = {"930", "931", "932", "933", "934", "941", "942"}
HARMLESS = {"host", "user-agent", "accept", "accept-language", "accept-encoding",
            "accept-charset", "connection", "referer", "cache-control", "keep-alive",
            "proxy-connection", "pragma", "content-type", "content-length", "x-ftw"}
FORM = ("", "application/x-www-form-urlencoded")

out = sys.stdout
for f in sorted(glob.glob(os.path.join(root, "tests/regression/tests/REQUEST-9*/*.yaml"))):
    group = os.path.basename(os.path.dirname(f)).split("-")[1]
    if group not in GROUPS:
        continue
    with open(f, encoding="utf-8", errors="replace") as fh:
        docs = list(yaml.safe_load_all(fh))
    for d in docs:
        for t in (d or {}).get("tests") or []:
            for st in t.get("stages") or []:
                s = (st or {}).get("stage") or {}
                i, o = s.get("input") or {}, s.get("output") or {}
                lc = o.get("log_contains")
                m = re.search(r'id "(\d+)"', lc) if isinstance(lc, str) else None
                if not m or i.get("encoded_request") or i.get("raw_request"):
                    continue
                hdrs = {str(k).lower(): str(v) for k, v in (i.get("headers") or {}).items()}
                if set(hdrs) - HARMLESS:
                    continue
                uri = str(i.get("uri", "/"))
                data = i.get("data")
                data = "" if data is None else (data if isinstance(data, str) else str(data))
                has_query = "?" in uri and uri.split("?", 1)[1] != ""
                if not data and has_query:
                    source, target = "query", uri
                elif data and "?" not in uri and hdrs.get("content-type", "").split(";")[0].strip().lower() in FORM:
                    source, target = "body", uri + "?" + data.replace("\n", "&")
                else:
                    continue
                out.write(json.dumps({
                    "title": str(t.get("test_title")), "group": group, "rule": m.group(1),
                    "pl": pl.get(m.group(1), 0), "source": source,
                    "method": "GET" if source == "body" else str(i.get("method", "GET")),
                    "target": target,
                }, ensure_ascii=False) + "\n")
