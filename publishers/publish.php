<?php
/**
 * publishers/publish.php: a "chat message" to the clients of index.ts from PHP, through Redis,
 * without Socket.IO and without connecting to the server: what emitter.ts does for an emit, for
 * the classic, sharded and streams adapters. Written from the formats in docs/learn/any-language.md,
 * not ported from any library; npm run conformance checks it (test/conformance.test.ts).
 *
 *   php publishers/publish.php --message "hello"                 everyone on "/"
 *   php publishers/publish.php --room=<socket id> --message hi   one socket (an id is a room)
 *   php publishers/publish.php --room lobby --except=<id>        the lobby, but not that socket
 *   php publishers/publish.php --user alice                      every socket of user alice
 *   php publishers/publish.php --nsp /lounge --event news        another namespace and event
 *
 * Needs php-cli, php-redis and php-msgpack (Debian: apt-get install php-cli php-redis php-msgpack).
 * Environment: REDIS_URL (redis://localhost:6379), ADAPTER (the server's: classic, sharded or
 * streams; default classic), REDIS_TIMEOUT (milliseconds Redis has to answer, default 5000).
 * Exit 0 once Redis has the message, 2 for a wrong command line or environment (nothing is sent),
 * 1 when Redis cannot be reached, does not answer or refuses; always one line on stderr.
 */
declare(strict_types=1);

const PREFIX = "socket.io";      // the adapters' default channel prefix and stream name
const UID = "emitter";           // any id no server uses: the servers drop what carries their own
const EVENT = 2;                 // a Socket.IO EVENT packet
const BROADCAST = 3;             // the cluster adapters' BROADCAST message
const STREAM_MAX_LENGTH = 10000; // the streams adapter trims its stream so, approximately
const USAGE = "usage: php publish.php [--room R]... [--user NAME]... [--except R]... [--nsp /NAME] [--event NAME] [--message TEXT]";

function usage_error(string $problem): never
{
    fwrite(STDERR, "publish.php: $problem (see --help)\n");
    exit(2);
}

function fail(string $line, int $code = 1): never
{
    fwrite(STDERR, "$line\n");
    exit($code);
}

/** --name=value or --name value; --room, --user and --except may repeat. */
function read_command(array $argv): array
{
    $command = ["room" => [], "user" => [], "except" => [], "nsp" => "/", "event" => "chat message", "message" => "message from outside"];
    for ($i = 0; $i < count($argv); $i++) {
        if ($argv[$i] === "--help") {
            echo USAGE, "\n";
            exit(0);
        }
        if (!preg_match('/^--(room|user|except|nsp|event|message)(?:=(.*))?$/s', $argv[$i], $option)) usage_error("unknown argument \"$argv[$i]\"");
        $value = $option[2] ?? $argv[++$i] ?? usage_error("--$option[1] takes a value");
        if (!preg_match('//u', $value)) usage_error("--$option[1] takes UTF-8 text");
        if (is_array($command[$option[1]])) $command[$option[1]][] = $value;
        else $command[$option[1]] = $value;
    }
    foreach ([...$command["room"], ...$command["except"]] as $room) {
        if (!text_of_length($room, 120)) usage_error("\"$room\" is not a room name or socket id");
    }
    foreach ($command["user"] as $user) {
        if (!text_of_length($user, 100)) usage_error("--user \"$user\": a user name has 1 to 100 characters, none of them control characters");
        $command["room"][] = "user:$user";
    }
    if (!preg_match('/^\/[^\s\p{Cc}]{0,99}$/u', $command["nsp"])) usage_error("--nsp takes a namespace such as \"/\" or \"/lounge\", got \"{$command["nsp"]}\"");
    if (!text_of_length($command["event"], 100)) usage_error("--event takes 1 to 100 characters");
    if ($command["message"] === "" || iconv_strlen($command["message"], "UTF-8") > 1000) usage_error("--message takes 1 to 1000 characters");
    return $command;
}

function text_of_length(string $text, int $most): bool
{
    return $text !== "" && iconv_strlen($text, "UTF-8") <= $most && !preg_match('/\p{Cc}/u', $text);
}

/** REDIS_URL, ADAPTER and REDIS_TIMEOUT, checked: a wrong one is exit code 2. */
function read_environment(): array
{
    $url = getenv("REDIS_URL") ?: "redis://localhost:6379";
    $adapter = getenv("ADAPTER") ?: "classic";
    $timeout = getenv("REDIS_TIMEOUT") ?: "5000";
    $parts = parse_url($url);
    if (!$parts || !in_array($parts["scheme"] ?? "", ["redis", "rediss"], true) || ($parts["host"] ?? "") === "") {
        fail("REDIS_URL must be a redis:// or rediss:// URL, got \"" . redacted($url) . "\"", 2);
    }
    if (!in_array($adapter, ["classic", "sharded", "streams"], true)) fail("ADAPTER must be one of classic, sharded, streams, got \"$adapter\"", 2);
    if (!ctype_digit($timeout) || (int) $timeout < 100) fail("REDIS_TIMEOUT must be a whole number of milliseconds >= 100, got \"$timeout\"", 2);
    return [$url, $parts, $adapter, (int) $timeout / 1000];
}

/** A password never reaches a message. */
function redacted(string $url): string
{
    return preg_replace('#//([^/@]*?):[^/@]*@#', '//$1:***@', $url);
}

/** Connects, authenticates and selects the database of REDIS_URL; bounded by REDIS_TIMEOUT. */
function connect(array $parts, float $timeout): Redis
{
    $redis = new Redis();
    $host = ($parts["scheme"] === "rediss" ? "tls://" : "") . $parts["host"];
    $redis->connect($host, $parts["port"] ?? 6379, $timeout, null, 0, $timeout);
    if (isset($parts["pass"])) {
        $password = urldecode($parts["pass"]);
        $authenticated = ($parts["user"] ?? "") === "" ? $redis->auth($password) : $redis->auth([urldecode($parts["user"]), $password]);
        if (!$authenticated) throw new RedisException($redis->getLastError() ?? "AUTH failed");
    }
    $database = trim($parts["path"] ?? "", "/");
    if ($database !== "" && !$redis->select((int) $database)) throw new RedisException($redis->getLastError() ?? "SELECT failed");
    return $redis;
}

/** Hands the message to Redis as the server's adapter expects it; false when Redis refuses it. */
function publish(Redis $redis, string $adapter, array $command): mixed
{
    $packet = ["type" => EVENT, "data" => [$command["event"], $command["message"]], "nsp" => $command["nsp"]];
    // Which sockets: those in any of `rooms` (every socket of the namespace when empty) and in none
    // of `except`. The adapters also read an optional `flags` map, which a publisher has no use for
    // (and php-msgpack cannot write as an empty map: an empty PHP array packs as an array).
    $opts = ["rooms" => $command["room"], "except" => $command["except"]];
    $channel = PREFIX . "#{$command["nsp"]}#";
    $rooms = $command["room"];
    if ($adapter === "classic") {
        // Every worker listens to socket.io#<nsp>#*; a channel that names one room lets a worker
        // without that room skip the message unread. MessagePack of [uid, packet, options].
        if (count($rooms) === 1) $channel .= "$rooms[0]#";
        return $redis->publish($channel, msgpack_pack([UID, $packet, $opts]));
    }
    $message = ["uid" => UID, "nsp" => $command["nsp"], "type" => BROADCAST, "data" => ["packet" => $packet, "opts" => $opts]];
    if ($adapter === "sharded") {
        // A worker listens to a room's own channel while it has sockets in the room, but never to a
        // socket id's: the adapter tells them apart by length (an id is 20 ASCII characters).
        if (count($rooms) === 1 && strlen($rooms[0]) !== 20) $channel .= "$rooms[0]#";
        return $redis->rawCommand("SPUBLISH", $channel, to_json($message));
    }
    // streams: an entry of the stream every worker reads, which is also what a client that comes
    // back after a short drop recovers; data is the JSON of the message's data.
    $fields = ["uid" => UID, "nsp" => $command["nsp"], "type" => (string) BROADCAST, "data" => to_json($message["data"])];
    return $redis->xAdd(PREFIX, "*", $fields, STREAM_MAX_LENGTH, true);
}

/** As JavaScript's JSON.stringify writes it: no spaces, "/" and text as they are. */
function to_json(array $value): string
{
    return json_encode($value, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR);
}

$command = read_command(array_slice($argv, 1));
[$url, $parts, $adapter, $timeout] = read_environment();
try {
    $redis = connect($parts, $timeout);
} catch (RedisException $e) {
    fail("cannot connect to Redis at " . redacted($url) . ": " . preg_replace('/\s+/', " ", trim($e->getMessage())));
}
try {
    // An unknown command (SPUBLISH before Redis 7), an ACL, MOVED: Redis answers with an error.
    if (publish($redis, $adapter, $command) === false) fail("Redis refused the message: " . $redis->getLastError());
} catch (RedisException $e) {
    $reason = preg_replace('/\s+/', " ", trim($e->getMessage()));
    if (str_contains($reason, "protocol error")) fail("not a Redis at " . redacted($url) . ": $reason");
    fail("no answer from Redis at " . redacted($url) . " within {$timeout} s ($reason): a frozen or overloaded Redis, or not a Redis at that address");
}
$redis->close();
