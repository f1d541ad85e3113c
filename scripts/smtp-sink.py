"""A real SMTP server on loopback for the tests (Debian's python3-aiosmtpd), started by
scripts/test.sh like Postgres. Each message it accepts becomes one JSON file in FOLDER:
{"mail_from", "rcpt_tos", "data"}, written under a temporary name and renamed, so a test
never reads half a message. Prints "listening on PORT" once it accepts connections.

Usage: /usr/bin/python3 scripts/smtp-sink.py PORT FOLDER
"""
import json
import os
import sys
import time

from aiosmtpd.controller import Controller


class FolderHandler:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = "%d-%06d" % (os.getpid(), self.count)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": envelope.content.decode("utf-8", errors="replace"),
        }
        temporary = os.path.join(self.folder, "." + name + ".tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        os.rename(temporary, os.path.join(self.folder, name + ".json"))
        return "250 Message accepted for delivery"


def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    os.makedirs(folder, exist_ok=True)
    # decode_data=False keeps the bytes as sent (UTF-8, 8bit); no STARTTLS on loopback.
    controller = Controller(FolderHandler(folder), hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    print("listening on %d" % port, flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
