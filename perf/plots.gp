# perf/plots.gp: run by perf/run.sh inside perf/results, on the .dat files perf/report.py wrote.
set terminal pngcairo noenhanced size 900,500 font ",10"
set style fill solid 0.7 border -1
set boxwidth 0.6
set grid ytics
set yrange [0:*]
set xtics rotate by -30
have(f) = system("test -s ".f." && echo 1 || echo 0") + 0

if (have("scan_medians.dat")) {
  set output "scan.png"
  set title "Warm sequential scan, 4 GiB file (median GB/s, one interleaved run)"
  set ylabel "GB/s"
  plot "scan_medians.dat" using 0:2:xtic(1) with boxes notitle lc rgb "#4477aa", \
       "" using 0:2:(sprintf("%.1f", $2)) with labels offset 0,0.7 notitle
}
if (have("load_medians.dat")) {
  set output "load.png"
  set title "Loading a 4 GiB file into shared memory (median GB/s)"
  set ylabel "GB/s"
  plot "load_medians.dat" using 0:2:xtic(1) with boxes notitle lc rgb "#228833", \
       "" using 0:2:(sprintf("%.2f", $2)) with labels offset 0,0.7 notitle
}
if (have("cold_medians.dat")) {
  set output "cold.png"
  set title "Cold scan (page cache dropped before each run), median GB/s"
  set ylabel "GB/s"
  plot "cold_medians.dat" using 0:2:xtic(1) with boxes notitle lc rgb "#aa3377", \
       "" using 0:2:(sprintf("%.2f", $2)) with labels offset 0,0.7 notitle
}
if (have("sweep_medians.dat")) {
  set output "sweep.png"
  set title "bulkmap scan: window size sweep (2 threads, median GB/s)"
  set xtics norotate
  set logscale x 2
  set xlabel "window (MiB)"
  set ylabel "GB/s"
  plot "sweep_medians.dat" using 1:2 with linespoints lw 2 title "--hash", \
       "" using 1:3 with linespoints lw 2 title "--lines"
  unset logscale x
  unset xlabel
  set xtics rotate by -30
}
if (have("bench_medians.dat")) {
  set output "bench.png"
  set terminal pngcairo noenhanced size 1200,450 font ",10"
  set multiplot layout 1,3 title "bulkmap bench: page kinds (medians)"
  set title "populate (GB/s)"
  set logscale y
  set yrange [*:*]
  unset ylabel
  plot "bench_medians.dat" using 0:2:xtic(1) with boxes notitle lc rgb "#4477aa"
  unset logscale y
  set yrange [0:*]
  set title "random 8-byte read (ns)"
  plot "bench_medians.dat" using 0:4:xtic(1) with boxes notitle lc rgb "#ee6677"
  set title "dependent load (ns)"
  plot "bench_medians.dat" using 0:5:xtic(1) with boxes notitle lc rgb "#ccbb44"
  unset multiplot
}
if (have("bench_sweep.dat")) {
  # Columns: working set, then for 4k, thp and large: random ns (median, min, max) and
  # dependent ns (median, min, max); "?" where a kind was not had.
  set output "bench_sweep.png"
  set terminal pngcairo noenhanced size 1300,560 font ",10"
  set datafile missing "?"
  set multiplot layout 1,2 title "bulkmap bench --sweep: latency against working set (median of the rounds, min-max bars)"
  set logscale x 2
  set logscale y 2
  set yrange [*:*]
  set xrange [*:*]
  set format x "%.0b%BB"
  set xtics rotate by -30 auto
  set grid xtics ytics
  set xlabel "working set (bytes)"
  set key top left
  set title "random 8-byte reads (independent: the CPU overlaps them)"
  set ylabel "ns a load"
  plot "bench_sweep.dat" using 1:2:3:4 with yerrorlines lw 2 lc rgb "#ee6677" title "4 KiB pages", \
       "" using 1:8:9:10 with yerrorlines lw 2 lc rgb "#228833" title "2 MiB transparent (THP)", \
       "" using 1:14:15:16 with yerrorlines lw 2 lc rgb "#4477aa" title "2 MiB hugetlb"
  set title "dependent loads (each address from the last value: page walks exposed)"
  plot "bench_sweep.dat" using 1:5:6:7 with yerrorlines lw 2 lc rgb "#ee6677" title "4 KiB pages", \
       "" using 1:11:12:13 with yerrorlines lw 2 lc rgb "#228833" title "2 MiB transparent (THP)", \
       "" using 1:17:18:19 with yerrorlines lw 2 lc rgb "#4477aa" title "2 MiB hugetlb"
  unset multiplot
  unset logscale x
  unset logscale y
  unset xlabel
}
