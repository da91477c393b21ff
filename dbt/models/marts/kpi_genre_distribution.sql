-- Per genre: plays, distinct listeners (users who played it) and its share of all plays.
with activity as (

    select * from {{ ref('fct_user_activity') }}

),

genres as (

    select
        genre,
        count_if(action = 'play') as plays,
        count(distinct case when action = 'play' then user_id end) as listeners
    from activity
    group by genre

)

select
    genre,
    plays,
    listeners,
    {{ safe_divide('plays', 'sum(plays) over ()') }} as share_of_plays
from genres
