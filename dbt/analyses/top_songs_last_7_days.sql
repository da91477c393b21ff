-- The seed README's sample query, exactly as written: top 10 songs by total plays with skip rate,
-- last 7 days. (COUNT(*) counts every action of the song, as the seed wrote it.)
SELECT song_name, artist_name, COUNT(*) as total_plays, AVG(CASE WHEN action = 'skip' THEN 1 ELSE 0 END) as skip_rate
FROM gold.fct_user_activity WHERE date >= CURRENT_DATE - 7 GROUP BY song_name, artist_name ORDER BY total_plays DESC LIMIT 10;
