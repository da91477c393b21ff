{#-
  The relation of a source table, or, when the table does not exist yet (a warehouse staged
  before it was introduced), an empty select with the given columns and types, so the models
  still build. Used for bronze.spotify_events_quarantine.
-#}
{% macro source_or_empty(source_name, table_name, columns) -%}
  {%- set rel = source(source_name, table_name) -%}
  {%- if execute -%}
    {%- set found = adapter.get_relation(database=rel.database, schema=rel.schema, identifier=rel.identifier) -%}
  {%- else -%}
    {%- set found = rel -%}
  {%- endif -%}
  {%- if found is not none -%}
    {{ rel }}
  {%- else -%}
    {{ log("source " ~ source_name ~ "." ~ table_name ~ " does not exist yet: reading it as empty", info=true) }}
    (select
    {%- for name, type in columns.items() %}
      cast(null as {{ type }}) as {{ name }}{% if not loop.last %},{% endif %}
    {%- endfor %}
    where 1 = 0)
  {%- endif -%}
{%- endmacro %}
