-- One row per artist of the catalog.
with artists as (

    select * from {{ ref('stg_reference__artists') }}

),

songs as (

    select artist_id, catalog, count(*) as songs
    from {{ ref('stg_reference__songs') }}
    group by artist_id, catalog

)

select
    artists.artist_id,
    artists.artist_name,
    artists.genre,
    coalesce(songs.songs, 0) as songs,
    artists.catalog
from artists
left join songs
    on artists.artist_id = songs.artist_id
   and artists.catalog = songs.catalog
