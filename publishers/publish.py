#!/usr/bin/python3
"""publishers/publish.py: a "chat message" to the clients of index.ts from Python, through Redis,
without Socket.IO and without connecting to the server: what emitter.ts does for an emit, for the
classic, sharded and streams adapters. Written from the formats in docs/learn/any-language.md,
not ported from any library; npm run conformance checks it (test/conformance.test.ts).

  /usr/bin/python3 publishers/publish.py --message "hello"               everyone on "/"
  /usr/bin/python3 publishers/publish.py --room=<socket id> --message hi one socket (an id is a room)
  /usr/bin/python3 publishers/publish.py --room lobby --except=<id>      the lobby, but not that socket
  /usr/bin/python3 publishers/publish.py --user alice                    every socket of user alice
  /usr/bin/python3 publishers/publish.py --nsp /lounge --event news      another namespace and event

Needs Debian's python3-redis and python3-msgpack (apt-get install python3-redis python3-msgpack),
which are installed for /usr/bin/python3, not for a python3 of pyenv or a virtualenv.
Environment: REDIS_URL (redis://localhost:6379), ADAPTER (the server's: classic, sharded or
streams; default classic), REDIS_TIMEOUT (milliseconds Redis has to answer, default 5000).
Exit 0 once Redis has the message, 2 for a wrong command line or environment (nothing is sent),
1 when Redis cannot be reached, does not answer or refuses; always one line on stderr.
"""
import argparse
import json
import os
import re
import sys
from urllib.parse import urlsplit

import msgpack
import redis

PREFIX = "socket.io"  # the adapters' default channel prefix and stream name
UID = "emitter"  # any id no server uses: the servers drop what carries their own
EVENT, BROADCAST = 2, 3  # a Socket.IO EVENT packet; the cluster adapters' BROADCAST message
STREAM_MAX_LENGTH = 10000  # the streams adapter trims its stream so, approximately


class Usage(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints its usage and exits; one line instead
        raise Usage(message)


def read_command(argv):
    parser = Parser(prog="publish.py", description="Sends one Socket.IO event to the clients of index.ts through Redis.")
    parser.add_argument("--room", action="append", default=[], metavar="R", help="only the sockets in room R (a socket id is a room); repeatable")
    parser.add_argument("--user", action="append", default=[], metavar="NAME", help="every socket of user NAME (the room user:NAME); repeatable")
    parser.add_argument("--except", dest="excepted", action="append", default=[], metavar="R", help="none of the sockets in room R; repeatable")
    parser.add_argument("--nsp", default="/", help='the namespace (default "/")')
    parser.add_argument("--event", default="chat message", help='the event (default "chat message")')
    parser.add_argument("--message", default="message from outside", help="the text")
    args = parser.parse_args(argv)
    options = {"--room": args.room, "--user": args.user, "--except": args.excepted, "--nsp": [args.nsp], "--event": [args.event], "--message": [args.message]}
    for option, values in options.items():
        check(all(map(is_utf8, values)), f"{option} takes UTF-8 text")
    for room in args.room + args.excepted:
        check(0 < len(room) <= 120 and not has_control(room), f'"{room}" is not a room name or socket id')
    for user in args.user:
        check(0 < len(user) <= 100 and not has_control(user), f'--user "{user}": a user name has 1 to 100 characters, none of them control characters')
    check(re.fullmatch(r"/[^\s\x00-\x1f\x7f]{0,99}", args.nsp) is not None, f'--nsp takes a namespace such as "/" or "/lounge", got "{args.nsp}"')
    check(0 < len(args.event) <= 100, "--event takes 1 to 100 characters")
    check(0 < len(args.message) <= 1000, "--message takes 1 to 1000 characters")
    args.room += [f"user:{user}" for user in args.user]
    return args


def check(condition, problem):
    if not condition:
        raise Usage(problem)


def has_control(text):
    return re.search(r"[\x00-\x1f\x7f-\x9f]", text) is not None


def is_utf8(text):  # bytes of the command line that are not UTF-8 come in as lone surrogates
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def read_environment():
    url = os.environ.get("REDIS_URL") or "redis://localhost:6379"
    adapter = os.environ.get("ADAPTER") or "classic"
    timeout = os.environ.get("REDIS_TIMEOUT") or "5000"
    parts = urlsplit(url)
    check(parts.scheme in ("redis", "rediss") and parts.hostname, f'REDIS_URL must be a redis:// or rediss:// URL, got "{redacted(url)}"')
    check(adapter in ("classic", "sharded", "streams"), f'ADAPTER must be one of classic, sharded, streams, got "{adapter}"')
    check(timeout.isdigit() and int(timeout) >= 100, f'REDIS_TIMEOUT must be a whole number of milliseconds >= 100, got "{timeout}"')
    return url, adapter, int(timeout) / 1000


def redacted(url):  # a password never reaches a message
    return re.sub(r"//([^/@]*?):[^/@]*@", r"//\1:***@", url)


def publish(client, adapter, args):
    packet = {"type": EVENT, "data": [args.event, args.message], "nsp": args.nsp}
    # Which sockets: those in any of `rooms` (every socket of the namespace when empty) and in none
    # of `except`. The adapters also read an optional `flags` map, which a publisher has no use for.
    opts = {"rooms": args.room, "except": args.excepted}
    channel = f"{PREFIX}#{args.nsp}#"
    if adapter == "classic":
        # Every worker listens to socket.io#<nsp>#*; a channel that names one room lets a worker
        # without that room skip the message unread. MessagePack of [uid, packet, options].
        if len(args.room) == 1:
            channel += f"{args.room[0]}#"
        return client.publish(channel, msgpack.packb([UID, packet, opts]))
    message = {"uid": UID, "nsp": args.nsp, "type": BROADCAST, "data": {"packet": packet, "opts": opts}}
    if adapter == "sharded":
        # A worker listens to a room's own channel while it has sockets in the room, but never to a
        # socket id's: the adapter tells them apart by length (an id has 20 characters).
        if len(args.room) == 1 and len(args.room[0]) != 20:
            channel += f"{args.room[0]}#"
        return client.execute_command("SPUBLISH", channel, to_json(message))
    # streams: an entry of the stream every worker reads, which is also what a client that comes
    # back after a short drop recovers; data is the JSON of the message's data.
    fields = {"uid": UID, "nsp": args.nsp, "type": str(BROADCAST), "data": to_json(message["data"])}
    return client.xadd(PREFIX, fields, maxlen=STREAM_MAX_LENGTH, approximate=True)


def to_json(value):  # as JavaScript's JSON.stringify writes it: no spaces, text as it is
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def main():
    try:
        args = read_command(sys.argv[1:])
    except Usage as problem:
        exit_usage(f"publish.py: {problem} (see --help)")
    try:
        url, adapter, timeout = read_environment()
    except Usage as problem:
        exit_usage(problem)
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        publish(client, adapter, args)
    except redis.exceptions.TimeoutError:
        fail(f"no answer from Redis at {redacted(url)} within {timeout:g} s: a frozen or overloaded Redis, or not a Redis at that address")
    except redis.exceptions.ConnectionError as err:
        fail(f"cannot connect to Redis at {redacted(url)}: {err}")
    except redis.exceptions.InvalidResponse as err:
        fail(f"not a Redis at {redacted(url)}: {err}")
    except redis.exceptions.RedisError as err:  # an unknown command (SPUBLISH before Redis 7), an ACL, MOVED
        fail(f"Redis refused the message: {err}")
    finally:
        client.close()


def exit_usage(problem):
    print(problem, file=sys.stderr)
    sys.exit(2)


def fail(line):
    print(line, file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
