#!/usr/bin/env python3
"""An independent identity provider for the interop test.

Signs tokens with PyJWT (RS256, ES256, EdDSA) and serves their JWKS over
Python's http.server on 127.0.0.1. Control endpoints let the test rotate keys
and make the JWKS endpoint fail. Prints `PORT <n>` once listening.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

LOCK = threading.Lock()
STATE = {"generation": 0, "keys": {}, "failing": False, "jwks_hits": 0, "issuer": None}


def new_keys(generation):
    keys = {
        "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate(),
    }
    return {alg: (f"{alg.lower()}-{generation}", key) for alg, key in keys.items()}


def jwk(alg, kid, key):
    pub = key.public_key()
    cls = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[alg]
    d = cls.to_jwk(pub, as_dict=True)
    d.update({"kid": kid, "alg": alg, "use": "sig"})
    return d


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        with LOCK:
            if url.path == "/.well-known/openid-configuration":
                base = STATE["issuer"]
                self.reply(200, json.dumps({"issuer": base, "jwks_uri": base + "/jwks.json"}))
            elif url.path == "/jwks.json":
                STATE["jwks_hits"] += 1
                if STATE["failing"]:
                    self.reply(500, "down", "text/plain")
                    return
                keys = [jwk(alg, kid, key) for gen in STATE["keys"].values() for alg, (kid, key) in gen.items()]
                self.reply(200, json.dumps({"keys": keys}))
            elif url.path == "/token":
                alg = q.get("alg", "RS256")
                gen = STATE["keys"][STATE["generation"]]
                kid, key = gen[alg]
                now = int(time.time())
                claims = {
                    "sub": q.get("sub", "alice"),
                    "iss": STATE["issuer"],
                    "aud": q.get("aud", "saas-api"),
                    "iat": now,
                    "exp": now + int(q.get("ttl", "600")),
                    "scope": q.get("scope", "invoices:read"),
                    "tenant": q.get("tenant", "acme"),
                }
                token = jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})
                self.reply(200, token, "text/plain")
            elif url.path == "/rotate":
                # A new generation of keys; the old ones are retired from the set.
                STATE["generation"] += 1
                STATE["keys"] = {STATE["generation"]: new_keys(STATE["generation"])}
                self.reply(200, str(STATE["generation"]), "text/plain")
            elif url.path == "/fail":
                STATE["failing"] = q.get("on", "1") == "1"
                self.reply(200, "ok", "text/plain")
            elif url.path == "/stats":
                self.reply(200, json.dumps({"jwks_hits": STATE["jwks_hits"]}))
            else:
                self.reply(404, "not found", "text/plain")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    STATE["issuer"] = f"http://127.0.0.1:{port}"
    STATE["keys"] = {0: new_keys(0)}
    print(f"PORT {port}", flush=True)
    # Exit when the test closes our stdin.
    threading.Thread(target=lambda: (sys.stdin.read(), server.shutdown()), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
