#!/usr/bin/env bash
# The local real stack, no Docker: Apache Kafka (single KRaft node, from the Maven Central jars)
# and MinIO (built with `go install` at a pinned version), both on 127.0.0.1.
#
#   scripts/stack.sh up       install on first use, start, wait until healthy, make the bucket
#   scripts/stack.sh up --stream   the same, and the simulator as an always-on source
#                             (`spotify-pipeline stream`, restart-safe; see "Stream" below)
#   scripts/stack.sh down     stop what `up` started (and nothing else)
#   scripts/stack.sh status   what runs, where its logs are
#   scripts/stack.sh env      the connection settings, as shell exports
#   scripts/stack.sh start-stream | stop-stream   the stream alone
#
# Downloads and builds are cached outside the repo, keyed by version, so a second `up` takes
# seconds: $SPOTIFY_STACK_CACHE (default ~/.cache/spotify-pipeline). Data, logs and pid files
# live in $SPOTIFY_STACK_HOME (default $SPOTIFY_STACK_CACHE/stack).
set -euo pipefail

KAFKA_VERSION=4.3.1
LOG4J_VERSION=2.26.1
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

CACHE=${SPOTIFY_STACK_CACHE:-$HOME/.cache/spotify-pipeline}
STATE=${SPOTIFY_STACK_HOME:-$CACHE/stack}
KAFKA_PORT=${SPOTIFY_KAFKA_PORT:-9092}
CONTROLLER_PORT=${SPOTIFY_KAFKA_CONTROLLER_PORT:-9093}
# A second listener that requires SASL/PLAIN, for the tests of authenticated clients.
KAFKA_SASL_PORT=${SPOTIFY_KAFKA_SASL_PORT:-9094}
KAFKA_SASL_USER=spotify
MINIO_PORT=${SPOTIFY_MINIO_PORT:-9000}
MINIO_CONSOLE_PORT=${SPOTIFY_MINIO_CONSOLE_PORT:-9001}
MINIO_USER=${SPOTIFY_MINIO_USER:-minioadmin}
MINIO_PASSWORD=${SPOTIFY_MINIO_PASSWORD:-minioadmin}
BUCKET=${SPOTIFY_LAKE_BUCKET:-spotify-lake}

# Stream: to this topic, at this mean rate (events/s), with these fault rates; its segment log
# (what it sent, to resume and to regenerate) in $STATE/stream.
STREAM_TOPIC=${SPOTIFY_STREAM_TOPIC:-spotify_events}
STREAM_RATE=${SPOTIFY_STREAM_RATE:-200}
STREAM_FAULTS=${SPOTIFY_STREAM_FAULTS:---late-rate 0.01 --duplicate-rate 0.005 --malformed-rate 0.002}

KAFKA_LIBS=$CACHE/kafka/$KAFKA_VERSION/libs
MINIO_BIN=$CACHE/minio/$MINIO_VERSION/minio

log() { printf '[stack] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid file -> running pid, or nothing
running_pid() {
  local f=$STATE/$1.pid
  [[ -f $f ]] || return 1
  local pid; pid=$(<"$f")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install_kafka() {
  [[ -f $KAFKA_LIBS/.complete ]] && return
  log "installing Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
  local work=$CACHE/kafka/$KAFKA_VERSION
  mkdir -p "$work"
  cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.spotify-pipeline</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <!-- Broker logging: only in the release tarball, not a dependency of the jars. -->
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
  rm -rf "$KAFKA_LIBS"
  mvn -B -q -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" \
    || die "could not fetch the Kafka jars with Maven"
  touch "$KAFKA_LIBS/.complete"
}

install_minio() {
  [[ -x $MINIO_BIN ]] && return
  log "building MinIO $MINIO_VERSION with go install (first time only, ~2 min)"
  mkdir -p "$(dirname "$MINIO_BIN")"
  GOBIN=$(dirname "$MINIO_BIN") CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go install "github.com/minio/minio@$MINIO_VERSION" || die "go install of MinIO failed"
}

# The SASL listener's password: random, made once per machine, kept with the stack's state
# (mode 600), never a known default.
kafka_sasl_password() {
  local f=$STATE/kafka/sasl-password
  if [[ ! -s $f ]]; then
    mkdir -p "$(dirname "$f")"
    (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$f")
  fi
  cat "$f"
}

kafka_java() {
  java -Xms512m -Xmx1g -cp "$KAFKA_LIBS/*" \
    -Dlog4j2.configurationFile="$STATE/kafka/log4j2.properties" "$@"
}

start_kafka() {
  if pid=$(running_pid kafka); then log "Kafka already running (pid $pid)"; return; fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by a process this script did not start (set SPOTIFY_KAFKA_PORT)"
  mkdir -p "$STATE/kafka/data"
  local sasl_password; sasl_password=$(kafka_sasl_password)
  cat >"$STATE/kafka/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$sasl_password";
log.dirs=$STATE/kafka/data
num.partitions=3
# Topics are created on purpose (by the producer), so a typo is an error, not a new topic.
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Retention is checked every 5 s (Kafka's default is 5 min), so a test can watch a topic's
# retention delete records before a drain and see the drain refuse the gap.
log.retention.check.interval.ms=5000
PROPS
  cat >"$STATE/kafka/log4j2.properties" <<'L4J'
rootLogger.level=INFO
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=INFO
logger.state.name=state.change.logger
logger.state.level=WARN
L4J
  if [[ ! -f $STATE/kafka/data/meta.properties ]]; then
    local id; id=$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
    kafka_java kafka.tools.StorageTool format --standalone -t "$id" -c "$STATE/kafka/server.properties" >"$STATE/kafka/format.log" 2>&1 \
      || die "formatting Kafka storage failed: see $STATE/kafka/format.log"
  fi
  nohup java -Xms512m -Xmx1g -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$STATE/kafka/log4j2.properties" \
    kafka.Kafka "$STATE/kafka/server.properties" >"$STATE/kafka.log" 2>&1 </dev/null &
  echo $! >"$STATE/kafka.pid"
  log "Kafka starting (pid $!), log: $STATE/kafka.log"
}

start_minio() {
  if pid=$(running_pid minio); then log "MinIO already running (pid $pid)"; return; fi
  port_open "$MINIO_PORT" && die "port $MINIO_PORT is taken by a process this script did not start (set SPOTIFY_MINIO_PORT)"
  mkdir -p "$STATE/minio/data"
  MINIO_ROOT_USER=$MINIO_USER MINIO_ROOT_PASSWORD=$MINIO_PASSWORD MINIO_BROWSER=on \
    nohup "$MINIO_BIN" server "$STATE/minio/data" --address "127.0.0.1:$MINIO_PORT" \
    --console-address "127.0.0.1:$MINIO_CONSOLE_PORT" >"$STATE/minio.log" 2>&1 </dev/null &
  echo $! >"$STATE/minio.pid"
  log "MinIO starting (pid $!), log: $STATE/minio.log"
}

wait_healthy() {
  local deadline=$((SECONDS + ${SPOTIFY_STACK_TIMEOUT:-90}))
  until port_open "$KAFKA_PORT" && grep -q "Kafka Server started" "$STATE/kafka.log" 2>/dev/null; do
    running_pid kafka >/dev/null || die "Kafka exited during start-up; last lines of $STATE/kafka.log:$(printf '\n'; tail -n 20 "$STATE/kafka.log")"
    ((SECONDS < deadline)) || die "Kafka not healthy after ${SPOTIFY_STACK_TIMEOUT:-90}s; see $STATE/kafka.log"
    sleep 0.5
  done
  until curl -fsS -o /dev/null "http://127.0.0.1:$MINIO_PORT/minio/health/live"; do
    running_pid minio >/dev/null || die "MinIO exited during start-up; see $STATE/minio.log"
    ((SECONDS < deadline)) || die "MinIO not healthy after ${SPOTIFY_STACK_TIMEOUT:-90}s; see $STATE/minio.log"
    sleep 0.5
  done
  log "Kafka healthy on 127.0.0.1:$KAFKA_PORT, MinIO healthy on http://127.0.0.1:$MINIO_PORT"
}

make_bucket() {
  # S3 CreateBucket, signed with SigV4 by curl: no client install needed. 409 = already there.
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$MINIO_USER:$MINIO_PASSWORD" "http://127.0.0.1:$MINIO_PORT/$BUCKET")
  case $code in
    200|409) log "bucket s3://$BUCKET ready" ;;
    *) die "creating bucket $BUCKET returned HTTP $code" ;;
  esac
}

stop_one() {
  local name=$1 pid
  if pid=$(running_pid "$name"); then
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { log "$name did not stop in 30s, killing"; kill -9 "$pid"; }
    log "$name stopped (pid $pid)"
  else
    log "$name not running"
  fi
  rm -f "$STATE/$name.pid"
}

# The installed CLI, or the repository's virtualenv's.
stream_cmd() {
  if command -v spotify-pipeline >/dev/null; then echo spotify-pipeline; return; fi
  local repo_cli; repo_cli=$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/spotify-pipeline
  [[ -x $repo_cli ]] || die "spotify-pipeline is not installed (pip install the wheel, or run scripts/test.sh once)"
  echo "$repo_cli"
}

start_stream() {
  if pid=$(running_pid stream); then log "stream already running (pid $pid)"; return; fi
  local cli; cli=$(stream_cmd)
  # shellcheck disable=SC2086 # STREAM_FAULTS is a list of options
  nohup "$cli" stream --bootstrap "127.0.0.1:$KAFKA_PORT" --topic "$STREAM_TOPIC" --rate "$STREAM_RATE" \
    $STREAM_FAULTS --state-dir "$STATE/stream" >>"$STATE/stream.log" 2>&1 </dev/null &
  echo $! >"$STATE/stream.pid"
  log "stream starting (pid $!): $STREAM_RATE events/s to $STREAM_TOPIC, log $STATE/stream.log, segments $STATE/stream"
}

print_env() {
  cat <<ENV
export SPOTIFY_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
export SPOTIFY_S3_ENDPOINT=http://127.0.0.1:$MINIO_PORT
export SPOTIFY_S3_ACCESS_KEY=$MINIO_USER
export SPOTIFY_S3_SECRET_KEY=$MINIO_PASSWORD
export SPOTIFY_LAKE_BUCKET=$BUCKET
export SPOTIFY_KAFKA_LIBS='$KAFKA_LIBS'
export SPOTIFY_KAFKA_SASL_BOOTSTRAP=127.0.0.1:$KAFKA_SASL_PORT
export SPOTIFY_KAFKA_SASL_USER=$KAFKA_SASL_USER
export SPOTIFY_KAFKA_SASL_PASSWORD=$(kafka_sasl_password)
export SPOTIFY_STREAM_STATE='$STATE/stream'
ENV
}

cmd=${1:-status}
mkdir -p "$STATE"
case $cmd in
  up)
    command -v java >/dev/null || die "java (17+) is needed for Kafka"
    install_kafka
    install_minio
    start_kafka
    start_minio
    wait_healthy
    make_bucket
    log "logs: $STATE/kafka.log $STATE/minio.log"
    if [[ ${2:-} == --stream ]]; then start_stream; fi
    ;;
  down)
    stop_one stream
    stop_one kafka
    stop_one minio
    ;;
  restart-kafka) stop_one kafka; start_kafka; wait_healthy ;;
  # For tests of outages: the broker down, then up again (its data kept).
  stop-kafka) stop_one kafka ;;
  start-kafka) start_kafka; wait_healthy ;;
  restart-minio) stop_one minio; start_minio; wait_healthy ;;
  start-stream) wait_healthy; start_stream ;;
  # SIGTERM: the stream waits for what is in flight and logs a clean stop.
  stop-stream) stop_one stream ;;
  status)
    for n in kafka minio stream; do
      if pid=$(running_pid $n); then echo "$n: running (pid $pid), log $STATE/$n.log"; else echo "$n: stopped"; fi
    done
    ;;
  env) print_env ;;
  *) die "usage: $0 up [--stream]|down|status|env|start-stream|stop-stream|restart-kafka|restart-minio|stop-kafka|start-kafka" ;;
esac
