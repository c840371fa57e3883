//! Tests of the strict node decoder: values, locations and error messages.

use super::*;
use serde::Deserialize;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Colour {
    Red,
    Blue,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Item {
    name: Located<String>,
    colour: Colour,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    tags: Vec<String>,
}

fn decode_item(yaml: &str) -> Result<Item, DecodeError> {
    decode(&Node::parse(yaml).unwrap())
}

#[test]
fn decodes_fields_with_locations() {
    let item = decode_item("name: a\ncolour: red\ncount: 3\ntags: [x, 1]\n").unwrap();
    assert_eq!(
        item,
        Item {
            name: Located {
                line: 1,
                column: 7,
                value: "a".into()
            },
            colour: Colour::Red,
            count: Some(3),
            tags: vec!["x".into(), "1".into()],
        }
    );
}

#[test]
fn unknown_field_points_at_key() {
    let err = decode_item("name: a\ncolour: red\ncolor: red\n").unwrap_err();
    assert_eq!((err.line, err.column), (3, 1));
    assert!(err.message.starts_with("unknown field `color`"), "{err}");
}

#[test]
fn bad_variant_points_at_value() {
    let err = decode_item("name: a\ncolour: green\n").unwrap_err();
    assert_eq!((err.line, err.column), (2, 9));
    assert_eq!(
        err.message,
        "unknown variant `green`, expected `red` or `blue`"
    );
}

#[test]
fn missing_field_points_at_mapping() {
    let err = decode_item("x:\n  name: a\n").unwrap_err();
    assert_eq!((err.line, err.column), (1, 1));
    let node = Node::parse("x:\n  name: a\n").unwrap();
    let NodeValue::Map(entries) = &node.value else {
        panic!("map")
    };
    let err = decode::<Item>(&entries[0].1).unwrap_err();
    assert_eq!((err.line, err.column), (2, 3));
    assert_eq!(err.message, "missing field `colour`");
}

#[test]
fn wrong_type_points_at_value() {
    let err = decode_item("name: a\ncolour: red\ncount: many\n").unwrap_err();
    assert_eq!((err.line, err.column), (3, 8));
    assert_eq!(err.message, "invalid type: string \"many\", expected u32");
    let err = decode_item("name: [a]\ncolour: red\n").unwrap_err();
    assert_eq!((err.line, err.column), (1, 7));
    assert_eq!(err.message, "invalid type: sequence, expected a string");
}
