"""A canned Cognito endpoint for the smoke test: answers every AWS JSON 1.1
call with success (GetUserAttributeVerificationCode with an email delivery).
Usage: python3 scripts/canned-cognito.py PORT"""
import http.server
import json
import sys

DELIVERY = {"CodeDeliveryDetails": {"Destination": "d***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        target = self.headers.get("x-amz-target", "")
        body = json.dumps(DELIVERY if target.endswith(".GetUserAttributeVerificationCode") else {}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/x-amz-json-1.1")
        self.send_header("x-amzn-requestid", "smoke-request")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # requests carry tokens: log nothing
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
