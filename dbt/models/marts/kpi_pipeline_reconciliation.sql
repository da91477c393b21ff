-- One row: how bronze deliveries became silver events, each difference counted, and what never
-- reached bronze (quarantined by the drain, lost to Kafka's retention).
--   bronze_deliveries = distinct_events + duplicate_deliveries
--   distinct_events   = silver_events + rejected_by_validation
with deliveries as (

    select * from {{ ref('int_event_deliveries__ranked_validated') }}

),

rejected as (

    select * from {{ ref('int_events_rejected') }}

),

activity as (

    select * from {{ ref('fct_user_activity') }}

),

bronze as (

    select
        count(*) as bronze_deliveries,
        count(distinct event_id) as distinct_events,
        count_if(delivery_number > 1) as duplicate_deliveries
    from deliveries

),

rejections as (

    select
        count_if(rejected_by = 'drain') as quarantined_by_drain,
        count_if(rejected_by = 'silver_validation') as rejected_by_validation
    from rejected

),

silver as (

    select count(*) as silver_events from activity

),

lost as (

    select coalesce(sum(lost_records), 0) as lost_to_retention from {{ ref('stg_spotify__lost_records') }}

)

select
    bronze.bronze_deliveries,
    bronze.distinct_events,
    bronze.duplicate_deliveries,
    silver.silver_events,
    coalesce(rejections.rejected_by_validation, 0) as rejected_by_validation,
    coalesce(rejections.quarantined_by_drain, 0) as quarantined_by_drain,
    lost.lost_to_retention
from bronze
cross join rejections
cross join silver
cross join lost
