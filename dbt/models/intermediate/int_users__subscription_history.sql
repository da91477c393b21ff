-- Each user's subscription periods (SCD2 from the source of truth): valid_from, valid_to
-- (null for the open period), in UTC.
with subscriptions as (

    select * from {{ ref('stg_reference__subscriptions') }}

),

periods as (

    select
        user_id,
        subscription,
        valid_from,
        lead(valid_from) over (partition by user_id order by valid_from) as valid_to
    from subscriptions

)

select * from periods
