"""Lake connection -> the core's object-store config.

The lake is a URL: ``s3://bucket[/prefix]`` (S3, MinIO, any S3-compatible store) or
``file:///abs/dir``. For ``s3://`` the credentials and endpoint come from an ``aws``
connection: login = access key id, password = secret access key, extra ``endpoint_url``
(MinIO: ``http://127.0.0.1:9000``) and ``region_name``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from spotify_pipeline._core import LakeConfig

# The Airflow Variable that names the lake for the pipeline's DAGs, and the lake when it is unset.
LAKE_URL_VARIABLE = "spotify_lake_url"
DEFAULT_LAKE_URL = "s3://spotify-lake"
# The same, for an operator's templated ``lake_url``.
LAKE_URL_TEMPLATE = f"{{{{ var.value.get('{LAKE_URL_VARIABLE}', '{DEFAULT_LAKE_URL}') }}}}"


def configured_lake_url() -> str:
    """The lake the Variable names (or the default), read where it runs: a trigger in the
    triggerer, which has no template context."""
    from airflow.sdk import Variable

    return str(Variable.get(LAKE_URL_VARIABLE, default=DEFAULT_LAKE_URL))


def s3_options(
    access_key_id: str | None, secret_access_key: str | None, endpoint: str | None, region: str | None
) -> dict[str, str]:
    """object_store's options for an ``s3://`` lake (the hook's connection, or the command
    line's ``AWS_*`` environment)."""
    options: dict[str, str] = {}
    if access_key_id:
        options["aws_access_key_id"] = access_key_id
    if secret_access_key:
        options["aws_secret_access_key"] = secret_access_key
    if endpoint:
        options["aws_endpoint"] = endpoint
        if str(endpoint).startswith("http://"):
            options["aws_allow_http"] = "true"
    options["aws_region"] = region or "us-east-1"
    return options


class LakeHook(BaseHook):
    conn_name_attr = "lake_conn_id"
    default_conn_name = "aws_default"
    hook_name = "Spotify Pipeline Lake"

    def __init__(self, lake_url: str, lake_conn_id: str | None = default_conn_name) -> None:
        super().__init__()
        self.lake_url = lake_url
        self.lake_conn_id = lake_conn_id

    def lake_config(self) -> LakeConfig:
        if not self.lake_url.startswith("s3://"):
            return {"url": self.lake_url, "options": {}}
        if not self.lake_conn_id:
            return {"url": self.lake_url, "options": {}}
        conn = self.get_connection(self.lake_conn_id)
        extra = conn.extra_dejson
        options = s3_options(conn.login, conn.password, extra.get("endpoint_url") or extra.get("host"), extra.get("region_name"))
        return {"url": self.lake_url, "options": options}
