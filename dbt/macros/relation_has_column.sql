{#-
  Whether a built relation has a column: an incremental model that gained a column reads it from
  {{ this }} only once a build has added it (on_schema_change adds it after the model's query).
-#}
{% macro relation_has_column(relation, column) -%}
  {%- if not execute -%}
    {{ return(false) }}
  {%- endif -%}
  {%- set names = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
  {{ return(column | lower in names) }}
{%- endmacro %}
