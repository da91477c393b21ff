-- Sessions account for every silver event, play and skip: nothing lost or double counted.
with s as (select sum(events) as events, sum(plays) as plays, sum(skips) as skips from {{ ref('fct_listening_sessions') }}),
e as (
    select count(*) as events,
           count_if(action = 'play') as plays,
           count_if(action = 'skip') as skips
    from {{ ref('fct_user_activity') }}
)
select * from s cross join e
where coalesce(s.events, 0) <> e.events or coalesce(s.plays, 0) <> coalesce(e.plays, 0) or coalesce(s.skips, 0) <> coalesce(e.skips, 0)
