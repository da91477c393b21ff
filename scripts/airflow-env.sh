# Sourced, not run: the Airflow 3 environment for the local stack, in one place, used by
# scripts/pipeline.sh and by the e2e tests. Override any SPOTIFY_* value before sourcing.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${SPOTIFY_DATA_DIR:=$ROOT/.data}"
: "${SPOTIFY_DUCKDB_PATH:=$SPOTIFY_DATA_DIR/spotify.duckdb}"
: "${SPOTIFY_LAKE_URL:=s3://spotify-lake}"
: "${SPOTIFY_KAFKA_BOOTSTRAP:=127.0.0.1:${SPOTIFY_KAFKA_PORT:-9092}}"
: "${SPOTIFY_S3_ENDPOINT:=http://127.0.0.1:${SPOTIFY_MINIO_PORT:-9000}}"
: "${SPOTIFY_S3_ACCESS_KEY:=${SPOTIFY_MINIO_USER:-minioadmin}}"
: "${SPOTIFY_S3_SECRET_KEY:=${SPOTIFY_MINIO_PASSWORD:-minioadmin}}"

export SPOTIFY_DATA_DIR SPOTIFY_DUCKDB_PATH SPOTIFY_LAKE_URL SPOTIFY_KAFKA_BOOTSTRAP SPOTIFY_S3_ENDPOINT
export PATH="$ROOT/.venv/bin:$PATH"
export AIRFLOW_HOME=${AIRFLOW_HOME:-$SPOTIFY_DATA_DIR/airflow}
export AIRFLOW__CORE__DAGS_FOLDER=${AIRFLOW__CORE__DAGS_FOLDER:-$ROOT/dags}
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM=4
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
export DBT_SEND_ANONYMOUS_USAGE_STATS=False DO_NOT_TRACK=1

# Connections (JSON form). In production these live in Airflow's connection store instead.
export AIRFLOW_CONN_KAFKA_DEFAULT="{\"conn_type\": \"kafka\", \"extra\": {\"bootstrap.servers\": \"$SPOTIFY_KAFKA_BOOTSTRAP\"}}"
export AIRFLOW_CONN_AWS_DEFAULT="{\"conn_type\": \"aws\", \"login\": \"$SPOTIFY_S3_ACCESS_KEY\", \"password\": \"$SPOTIFY_S3_SECRET_KEY\", \"extra\": {\"endpoint_url\": \"$SPOTIFY_S3_ENDPOINT\", \"region_name\": \"us-east-1\"}}"
export AIRFLOW_CONN_DUCKDB_DEFAULT="{\"conn_type\": \"duckdb\", \"extra\": {\"path\": \"$SPOTIFY_DUCKDB_PATH\"}}"
export AIRFLOW_VAR_SPOTIFY_LAKE_URL=$SPOTIFY_LAKE_URL
mkdir -p "$AIRFLOW_HOME" "$(dirname "$SPOTIFY_DUCKDB_PATH")"
