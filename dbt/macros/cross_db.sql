{#-
  SQL that differs between DuckDB and Snowflake, behind adapter.dispatch: each macro has a
  default__ (DuckDB) and a snowflake__ implementation. Models call only these.
-#}

{#- A UTC wall-clock TIMESTAMP in an IANA time zone given by a column: the local wall-clock time. -#}
{% macro utc_to_local(ts, tz) -%}
  {{ return(adapter.dispatch('utc_to_local', 'spotify')(ts, tz)) }}
{%- endmacro %}
{% macro default__utc_to_local(ts, tz) -%}
  timezone({{ tz }}, timezone('UTC', {{ ts }}))
{%- endmacro %}
{% macro snowflake__utc_to_local(ts, tz) -%}
  convert_timezone('UTC', {{ tz }}, {{ ts }})
{%- endmacro %}

{#- A TIMESTAMP WITH TIME ZONE as UTC wall-clock TIMESTAMP (no zone), like bronze's event_ts. -#}
{% macro to_utc_timestamp(ts) -%}
  {{ return(adapter.dispatch('to_utc_timestamp', 'spotify')(ts)) }}
{%- endmacro %}
{% macro default__to_utc_timestamp(ts) -%}
  timezone('UTC', {{ ts }})
{%- endmacro %}
{% macro snowflake__to_utc_timestamp(ts) -%}
  cast(convert_timezone('UTC', {{ ts }}) as timestamp_ntz)
{%- endmacro %}

{#- Seconds (fractional, millisecond precision) from one timestamp to another. -#}
{% macro seconds_between(start_ts, end_ts) -%}
  {{ return(adapter.dispatch('seconds_between', 'spotify')(start_ts, end_ts)) }}
{%- endmacro %}
{% macro default__seconds_between(start_ts, end_ts) -%}
  (cast(date_diff('millisecond', {{ start_ts }}, {{ end_ts }}) as double) / 1000.0)
{%- endmacro %}
{% macro snowflake__seconds_between(start_ts, end_ts) -%}
  (cast(datediff('millisecond', {{ start_ts }}, {{ end_ts }}) as double) / 1000.0)
{%- endmacro %}

{#- A timestamp moved by a number of minutes / days (negative: back). -#}
{% macro add_minutes(ts, n) -%}
  {{ return(adapter.dispatch('add_minutes', 'spotify')(ts, n)) }}
{%- endmacro %}
{% macro default__add_minutes(ts, n) -%}
  ({{ ts }} + to_minutes(cast({{ n }} as bigint)))
{%- endmacro %}
{% macro snowflake__add_minutes(ts, n) -%}
  dateadd('minute', {{ n }}, {{ ts }})
{%- endmacro %}

{% macro add_days(ts, n) -%}
  {{ return(adapter.dispatch('add_days', 'spotify')(ts, n)) }}
{%- endmacro %}
{% macro default__add_days(ts, n) -%}
  ({{ ts }} + to_days(cast({{ n }} as integer)))
{%- endmacro %}
{% macro snowflake__add_days(ts, n) -%}
  dateadd('day', {{ n }}, {{ ts }})
{%- endmacro %}

{#- The lake file's name without folders and extension: the ledger's batch_id. -#}
{% macro file_stem(path) -%}
  {{ return(adapter.dispatch('file_stem', 'spotify')(path)) }}
{%- endmacro %}
{% macro default__file_stem(path) -%}
  regexp_extract({{ path }}, '([^/]+)\.[^./]*$', 1)
{%- endmacro %}
{% macro snowflake__file_stem(path) -%}
  regexp_substr({{ path }}, '([^/]+)\\.[^./]*$', 1, 1, 'e', 1)
{%- endmacro %}

{#- Hour of day (0-23) of a timestamp. -#}
{% macro hour_of(ts) -%}
  {{ return(adapter.dispatch('hour_of', 'spotify')(ts)) }}
{%- endmacro %}
{% macro default__hour_of(ts) -%}
  cast(extract(hour from {{ ts }}) as integer)
{%- endmacro %}
{% macro snowflake__hour_of(ts) -%}
  hour({{ ts }})
{%- endmacro %}

{#- a / b as a double, null when b is 0 or null. -#}
{% macro safe_divide(a, b) -%}
  case when {{ b }} is null or {{ b }} = 0 then null else cast({{ a }} as double) / {{ b }} end
{%- endmacro %}

{#- An ISO timestamp literal, typed as a wall-clock (UTC) TIMESTAMP. -#}
{% macro timestamp_literal(value) -%}
  {{ return(adapter.dispatch('timestamp_literal', 'spotify')(value)) }}
{%- endmacro %}
{% macro default__timestamp_literal(value) -%}
  cast('{{ value }}' as timestamp)
{%- endmacro %}
{% macro snowflake__timestamp_literal(value) -%}
  cast('{{ value }}' as timestamp_ntz)
{%- endmacro %}
