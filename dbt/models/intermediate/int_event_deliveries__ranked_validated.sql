-- Every delivery of every event with the load that brought it, its rank among the deliveries of
-- its event_id (1 = the first, by load order) and its silver rejection reason.
--
-- Materialized, not a view: the ranking is a window over deliveries, and as a view every model and
-- test downstream computed it again (about 15 times a build; at 1.2 M events, most of the build).
-- Incremental: a run ranks again only the event_ids that a new batch delivered, with every earlier
-- delivery of them, and replaces their rows. Those are the ranks a full refresh gives, whatever
-- order the loads came in; as a full table at 10 M events it took 23 s of a 40 s build.
{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns'
    )
}}

with deliveries as (

    select * from {{ ref('stg_spotify__event_deliveries') }}
    {% if is_incremental() %}
    where event_id in (
        select event_id from {{ ref('stg_spotify__event_deliveries') }}
        where batch_id not in (select distinct batch_id from {{ this }} where batch_id is not null)
    )
    {% endif %}

),

loads as (

    select * from {{ ref('stg_spotify__loads') }}

),

with_loads as (

    select
        deliveries.*,
        loads.loaded_at
    from deliveries
    left join loads on deliveries.batch_id = loads.batch_id

),

ranked as (

    -- Kafka is at-least-once upstream: the first delivery (by load, then Kafka position) wins.
    select
        *,
        row_number() over (
            partition by event_id
            order by loaded_at, kafka_topic, kafka_partition, kafka_offset
        ) as delivery_number
    from with_loads

),

validated as (

    select
        *,
        {{ event_rejection_reason() }} as rejection_reason,
        -- When this build ranked the row: int_sessions rebuilds the sessions of rows ranked since
        -- its own last build (builds of one warehouse run one at a time, on its clock).
        {{ to_utc_timestamp(dbt.current_timestamp()) }} as ranked_at
    from ranked

)

select * from validated
