with source as (

    select * from {{ source('reference', 'songs') }}
    {{ reference_catalog_filter() }}

),

renamed as (

    select
        song_id,
        song_name,
        artist_id,
        album as album_name,
        genre,
        cast(release_date as date) as release_date,
        cast(duration_ms as bigint) as duration_ms,
        cast(skip_bias as double) as skip_bias,
        cast(is_new_release as boolean) as is_new_release,
        catalog
    from source

)

select * from renamed
