-- The incremental fct_user_activity holds exactly the silver events: none missing, none extra.
-- (Catches an incremental run drifting from what a full refresh would build.)
with fct as (select event_id from {{ ref('fct_user_activity') }}),
silver as (select event_id from {{ ref('stg_spotify__events') }}),
missing as (select 'missing' as problem, event_id from silver where event_id not in (select event_id from fct)),
extra as (select 'extra' as problem, event_id from fct where event_id not in (select event_id from silver))
select * from missing
union all
select * from extra
