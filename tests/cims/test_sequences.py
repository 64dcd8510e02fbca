from cims.models import Sequence, next_sequence_value


def test_it_counts_each_sequence_separately(db):
    assert [next_sequence_value("a"), next_sequence_value("a"), next_sequence_value("b")] == [1, 2, 1]
    assert Sequence.objects.get(name="a").last_value == 2
