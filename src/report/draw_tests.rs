use super::*;

#[test]
fn bins_are_equal_width_and_the_largest_value_is_in_the_last() {
    // 0..10 in 5 bins of 2: [0,2) [2,4) [4,6) [6,8) [8,10]; 2.0 is in the second.
    let bins = binned(&[0.0, 1.9, 2.0, 5.0, 9.9, 10.0], 5, None);
    assert_eq!((bins.lo, bins.width, bins.above), (0.0, 2.0, 0));
    assert_eq!(bins.counts, vec![2, 1, 1, 0, 2]);
    // One distinct value: one full bin.
    assert_eq!(binned(&[3.0, 3.0], 4, None).counts, vec![2, 0, 0, 0]);
}

#[test]
fn values_above_the_upper_quantile_count_in_the_last_bin() {
    // Ten values 1..=10 and 100; the 0.8 quantile (nearest rank: the 9th of 11) is 9.
    let mut values: Vec<f64> = (1..=10).map(f64::from).collect();
    values.push(100.0);
    let bins = binned(&values, 4, Some(0.8));
    assert_eq!(
        (bins.lo, bins.width, bins.above, bins.max),
        (1.0, 2.0, 2, 100.0)
    );
    // [1,3) [3,5) [5,7) [7,9] + 10 and 100 above.
    assert_eq!(bins.counts, vec![2, 2, 2, 5]);
}

#[test]
fn numbers_are_written_for_people() {
    assert_eq!(number(17117.0), "17,117");
    assert_eq!(number(-1234.5), "-1,234.5");
    assert_eq!(number(0.126), "0.13");
    assert_eq!(number(-0.5), "-0.5");
}

#[test]
fn heatmap_labels_sort_as_numbers_when_they_are() {
    assert_eq!(ordered(["2", "10", "1"].into_iter()), ["1", "2", "10"]);
    assert_eq!(ordered(["b", "a", "b"].into_iter()), ["b", "a"]);
}

#[test]
fn labels_in_charts_are_escaped() {
    let svg = bars(
        "t",
        "customers",
        &[("<script>x</script>".into(), 3.0)],
        None,
    )
    .unwrap();
    assert!(svg.contains("&lt;script&gt;"), "{svg}");
    assert!(!svg.contains("<script>"));
}
