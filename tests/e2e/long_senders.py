"""What the long-sender tests share (test_srs_store.py, test_srs_redis.py)."""

import re

FORWARDS = """\
alice@alias.test      user@dest.test
@list.test            user@dest.test
"""

# The shapes of the world's transactional senders (issue 15).
SES = "0100018c5f8e9a2b-3c4d5e6f-7a8b-4c9d-0e1f-2a3b4c5d6e7f-000000@amazonses.com"
SENDGRID = "bounces+12345678-abcd-alice=example.com@em1234.example.net"
MAILCHIMP = "msprvs1=19728RdPY0EtT=bounces-174583-8@bounce.mailchimpapp.net"
VERP = "list-bounces+" + "x" * 85 + "@lists.example.org"  # a 98-octet local part
KEYED = re.compile(r"^SRS0=[A-Za-z0-9_-]{4}=[A-Z2-7]{2}=-=[A-Z2-7]{26}@fwd\.test$")
BODY = b"From: <noreply@amazonses.com>\r\nSubject: receipt\r\n\r\nThanks.\r\n"
BOUNCE = b"From: MAILER-DAEMON@dest.test\r\nSubject: Undelivered\r\n\r\nNo such user.\r\n"
