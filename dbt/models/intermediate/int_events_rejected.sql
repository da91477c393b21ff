-- Every record that did not become a silver event, with the layer that rejected it and why:
--   rejected_by = 'drain'             quarantined by the drain (broke the event contract)
--   rejected_by = 'silver_validation' reached bronze, but its first delivery breaks a silver rule
-- Duplicate deliveries are not rejections: they are counted in kpi_pipeline_reconciliation.
with quarantined as (

    select * from {{ ref('stg_spotify__quarantined_records') }}

),

deliveries as (

    select * from {{ ref('int_event_deliveries__ranked_validated') }}

),

drain_rejected as (

    select
        'drain' as rejected_by,
        reason,
        detail,
        cast(null as varchar) as event_id,
        cast(null as varchar) as event_type,
        cast(null as timestamp) as event_at,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        batch_id,
        source_file,
        payload
    from quarantined

),

validation_rejected as (

    select
        'silver_validation' as rejected_by,
        rejection_reason as reason,
        cast(null as varchar) as detail,
        event_id,
        event_type,
        event_at,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        batch_id,
        source_file,
        cast(null as varchar) as payload
    from deliveries
    where delivery_number = 1
      and rejection_reason is not null

),

unioned as (

    select * from drain_rejected
    union all
    select * from validation_rejected

)

select * from unioned
